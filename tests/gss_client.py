"""A small RFC 2228 client on python-gssapi (MIT krb5): AUTH GSSAPI, ADAT, MIC/ENC commands, 631/632
replies and wrapped data blocks; it can also send what a real client would not (tampered or replayed
tokens). The ticket is the one KRB5CCNAME names, read with the krb5.conf KRB5_CONFIG names."""

import base64
import socket
import struct

import gssapi


class GssFtp:
    """An RFC 2228 client: control lines over a socket, commands wrapped once the context is up."""

    def __init__(self, port, service="ftp@localhost", delegate=True, in_sequence=True):
        """`in_sequence`: tokens must come in the order sent (without it, a client may skip data blocks it
        never reads, as after ABOR; replays are still refused)."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.service, self.delegate, self.in_sequence = service, delegate, in_sequence
        self.context = None
        assert self.reply()[0] == 220

    def line(self):
        return self.file.readline().decode().rstrip("\r\n")

    def reply(self):
        """(code, text) of the next reply, unwrapping 631/632 lines."""
        lines = []
        while True:
            line = self.line()
            if line[:3] in ("631", "632"):
                inner, _ = self.unwrap(base64.b64decode(line[4:]))
                line = inner.decode().rstrip("\r\n")
            lines.append(line)
            if len(line) > 3 and line[:3].isdigit() and line[3] == " ":
                return int(line[:3]), "\n".join(lines)

    def send_clear(self, command):
        self.sock.sendall(command.encode() + b"\r\n")
        return self.reply()

    def unwrap(self, token):
        result = self.context.unwrap(token)
        return result.message, result.encrypted

    def wrapped(self, command, encrypt=True):
        token = self.context.wrap(command.encode() + b"\r\n", encrypt).message
        return f"{'ENC' if encrypt else 'MIC'} {base64.b64encode(token).decode()}"

    def send(self, command, encrypt=True):
        return self.send_clear(self.wrapped(command, encrypt))

    def first_token(self):
        """AUTH GSSAPI, and the context's first token."""
        assert self.send_clear("AUTH GSSAPI")[0] == 334
        flags = [gssapi.RequirementFlag.mutual_authentication, gssapi.RequirementFlag.replay_detection]
        if self.in_sequence:
            flags.append(gssapi.RequirementFlag.out_of_sequence_detection)
        if self.delegate:
            flags.append(gssapi.RequirementFlag.delegate_to_peer)
        name = gssapi.Name(self.service, gssapi.NameType.hostbased_service)
        self.context = gssapi.SecurityContext(name=name, flags=flags, usage="initiate")
        return self.context.step()

    def adat(self, token):
        code, text = self.send_clear(f"ADAT {base64.b64encode(token).decode()}")
        if code == 235 and "ADAT=" in text:
            self.context.step(base64.b64decode(text.split("ADAT=")[1]))
        return code, text

    def login(self, user="alice"):
        code, text = self.adat(self.first_token())
        assert code == 235, text
        assert self.context.complete
        return self.send(f"USER {user}")

    def data_connection(self):
        code, text = self.send("EPSV")
        assert code == 229, text
        port = int(text.split("|||")[1].split("|")[0])
        return socket.create_connection(("127.0.0.1", port), timeout=30)

    def retr(self, path, protected=True):
        data = self.data_connection()
        assert self.send(f"RETR {path}")[0] == 150
        # One context numbers every token: the data blocks come before the 226 that follows them.
        content = self.unblock(read_all(data)) if protected else read_all(data)
        assert self.reply()[0] == 226
        return content

    def stor(self, path, payload, encrypt=True, block=65536):
        data = self.data_connection()
        assert self.send(f"STOR {path}")[0] == 150
        for start in range(0, len(payload), block):
            token = self.context.wrap(payload[start:start + block], encrypt).message
            data.sendall(struct.pack(">I", len(token)) + token)
        data.close()
        return self.reply()

    def unblock(self, raw):
        """The data of a protected data connection's blocks."""
        blocks, at, view = [], 0, memoryview(raw)
        while at < len(raw):
            (length,) = struct.unpack(">I", view[at:at + 4])
            blocks.append(self.unwrap(bytes(view[at + 4:at + 4 + length]))[0])
            at += 4 + length
        return b"".join(blocks)

    def close(self):
        self.sock.close()


def read_all(sock):
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)
