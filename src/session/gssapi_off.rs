//! Built without the krb5 feature: AUTH GSSAPI is not offered, and ADAT, MIC, ENC and CONF are refused.

use std::io;

use super::command::{Command, CommandProtection, Protection};
use super::context::Context;
use super::reply::*;
use super::{Flow, Handled, Session};
use crate::stream::Stream;

#[derive(Default, Clone, Copy)]
pub struct GssState;

impl Session {
    pub(super) fn protected_line(&mut self, _command: Result<String, Reply>, _confidential: bool) -> io::Result<Flow> {
        unreachable!("no protected lines without the krb5 feature")
    }
}

impl Context<'_> {
    pub(super) fn auth_gssapi(&mut self) -> Handled {
        self.reply(
            NOT_IMPLEMENTED_FOR_PARAM,
            "AUTH GSSAPI: this hdfsftpd is built without Kerberos (cargo feature krb5).",
        )
    }

    pub(super) fn adat(&mut self, _data: &str) -> Handled {
        self.reply(BAD_SEQUENCE, "ADAT needs AUTH GSSAPI first.")
    }

    pub(super) fn protected_command(&mut self, _level: CommandProtection, _data: &str) -> Handled {
        self.reply(BAD_SEQUENCE, "Protected commands need AUTH GSSAPI and ADAT first.")
    }

    pub(super) fn check_command_protection(&self, _command: &Command) -> Result<(), Reply> {
        Ok(())
    }

    pub(super) fn gss_user(&mut self, _name: &str) -> Option<Handled> {
        None
    }

    pub(super) fn gss_established(&self) -> bool {
        let GssState = self.state.gss;
        false
    }

    pub(super) fn gss_pbsz(&mut self, _size: &str) -> Handled {
        unreachable!("no GSSAPI context without the krb5 feature")
    }

    pub(super) fn gss_prot(&mut self, _level: Protection) -> Handled {
        unreachable!("no GSSAPI context without the krb5 feature")
    }

    pub(super) fn gss_protect_data(&self, data: Stream) -> Result<Result<Stream, Reply>, Stream> {
        Err(data)
    }
}
