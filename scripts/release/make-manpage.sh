#!/bin/sh
# Writes the hdfsftpd(8) man page to stdout, its OPTIONS section generated from `hdfsftpd --help`
# so the page never disagrees with the binary.
set -eu
bin=${1:?usage: make-manpage.sh path/to/hdfsftpd}
version=$("$bin" --version | cut -d' ' -f2)

cat <<HEAD
.TH HDFSFTPD 8 "" "hdfsftpd $version" "System Administration"
.SH NAME
hdfsftpd \\- FTP/FTPS gateway to HDFS with Kerberos login
.SH SYNOPSIS
.B hdfsftpd
[\\fIFLAGS\\fR]
.br
.B hdfsftpd \\-\\-config
.I FILE
[\\fIFLAGS\\fR]
.SH DESCRIPTION
.B hdfsftpd
serves a storage tree (HDFS or local disk) over FTP and FTPS. Users log in with a password checked
against a users file or a Kerberos KDC and act on storage as themselves, confined to their home.
It is a blocking server with a fixed pool of worker threads, one per allowed session.
.PP
Every setting is both a command-line flag and a \\fIkey = value\\fR line of the \\-\\-config file
(# starts a comment); flags win. Switches are given bare on the command line and as yes/no in the file.
.SH OPTIONS
HEAD

"$bin" --help | sed -n '/^[A-Za-z].*:$/,$p' | while IFS= read -r line; do
    case "$line" in
        "") ;;
        [A-Za-z]*:) printf '.SS %s\n' "${line%:}" ;;
        *)
            flag=$(printf '%s' "$line" | sed -E 's/^ +(--[a-z0-9-]+( [A-Z|.0-9a-z-]+)?) {2,}.*$/\1/')
            text=$(printf '%s' "$line" | sed -E 's/^ +--[a-z0-9-]+( [A-Z|.0-9a-z-]+)? {2,}//')
            printf '.TP\n.B %s\n%s\n' "$(printf '%s' "$flag" | sed 's/-/\\-/g')" "$text" ;;
    esac
done

cat <<'TAIL'
.SH SIGNALS
.TP
.B SIGHUP
Reopen the log and transfer log files (after rotation), re-read the users file, the TLS certificate and key and the client CA file.
Sessions keep running.
.TP
.B SIGTERM, SIGINT
Stop accepting connections, close idle sessions, let running transfers finish for shutdown-grace
seconds, then stop the rest (reported to their clients and in the transfer log), close all storage
streams and exit 0.
.SH FILES
.TP
.I /etc/hdfsftpd/hdfsftpd.conf
Configuration; shipped with enable = no.
.TP
.I /etc/init.d/hdfsftpd
Init script: start, stop, restart, reload, force-reload, status.
.SH EXIT STATUS
0 on a clean stop; 1 when start-up or serving failed; 2 for an invalid configuration or a service
disabled by enable = no. With \-\-daemon the starting process exits 0 only once the daemon serves.
.SH SEE ALSO
.BR vsftpd (8),
.BR xferlog (5),
.BR kinit (1)
TAIL
