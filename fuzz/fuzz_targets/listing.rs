#![no_main]
use hdfsftpd::fuzzing::{listing, ListedFile};
use libfuzzer_sys::arbitrary::{self, Arbitrary};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    name: &'a str,
    directory: bool,
    size: u64,
    modified_secs: u64,
    mode: u32,
    owner: &'a str,
    group: &'a str,
    links: u64,
    replication: Option<u16>,
    writable: bool,
    facts: &'a str,
}

libfuzzer_sys::fuzz_target!(|input: Input| {
    let Input { name, directory, size, modified_secs, mode, owner, group, links, replication, writable, facts } = input;
    let file =
        ListedFile { name, directory, size, modified_secs, mode, owner, group, links, replication, writable, facts };
    listing(&file)
});
