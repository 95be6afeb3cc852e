"""Conversations written as pcaps: both directions of a TCP session, with real sequence
numbers, handshake and FINs, so the sensor's reassembly sees what a link carries."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def tcp_session(
    client: tuple[str, int], server: tuple[str, int], turns: list[tuple[bool, bytes]], t0: float
) -> list[Ether]:
    """`turns`: (from the client?, bytes) in order; each turn one segment."""
    seq = {True: 1000, False: 9000}
    t = t0

    def seg(from_client: bool, flags: str, data: bytes = b"") -> Ether:
        nonlocal t
        src, dst = (client, server) if from_client else (server, client)
        pkt = (
            Ether()
            / IP(src=src[0], dst=dst[0])
            / TCP(
                sport=src[1],
                dport=dst[1],
                flags=flags,
                seq=seq[from_client],
                ack=seq[not from_client],
            )
        )
        pkt[TCP].ack = seq[not from_client]
        if data:
            pkt = pkt / data
        pkt.time = t
        t += 0.001
        seq[from_client] += len(data) + (1 if "S" in flags or "F" in flags else 0)
        return pkt

    pkts = [seg(True, "S"), seg(False, "SA"), seg(True, "A")]
    for from_client, data in turns:
        pkts.append(seg(from_client, "PA", data))
    pkts += [seg(True, "FA"), seg(False, "FA"), seg(True, "A")]
    return pkts


def mail_with_attachment(name: str, data: bytes, subject: str = "Informe") -> bytes:
    msg = EmailMessage()
    msg["From"] = "remitente@correo.example"
    msg["To"] = "seguridad@ministerio.gob.example"
    msg["Subject"] = subject
    msg.set_content("Adjunto el informe.\n")
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes().replace(b"\n", b"\r\n")


def smtp_turns(message: bytes) -> list[tuple[bool, bytes]]:
    """An SMTP dialogue as smtplib and a server hold it, the message dot-stuffed."""
    body = message.replace(b"\r\n.", b"\r\n..")
    return [
        (False, b"220 mail.ministerio.gob.example ESMTP\r\n"),
        (True, b"EHLO cliente.example\r\n"),
        (False, b"250-mail.ministerio.gob.example\r\n250 8BITMIME\r\n"),
        (True, b"MAIL FROM:<remitente@correo.example>\r\n"),
        (False, b"250 OK\r\n"),
        (True, b"RCPT TO:<seguridad@ministerio.gob.example>\r\n"),
        (False, b"250 OK\r\n"),
        (True, b"DATA\r\n"),
        (False, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (True, body + b"\r\n.\r\n"),
        (False, b"250 OK queued\r\n"),
        (True, b"QUIT\r\n"),
        (False, b"221 Bye\r\n"),
    ]


def smtp_pcap(path: Path, attachments: list[tuple[str, bytes]], first_client: int = 1) -> int:
    """One SMTP session per attachment, each from its own client; the packet count."""
    pkts: list[Ether] = []
    for n, (name, data) in enumerate(attachments):
        client = (f"10.9.1.{first_client + n}", 40000 + first_client + n)
        turns = smtp_turns(mail_with_attachment(name, data))
        pkts += tcp_session(client, ("10.9.0.25", 25), turns, 1_700_000_000.0 + n)
    wrpcap(str(path), pkts)
    return len(pkts)
