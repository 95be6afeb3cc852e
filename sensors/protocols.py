"""The detection table: which analyzer reads a flow, by port or by its first bytes.

A new protocol is one module (its parser and an analyzer: sensors.analyzer)
and one row here. The engine reads the table when it starts: a flow whose
responder's port is in a row's `ports` gets that analyzer at once (UDP: either
port); else a TCP flow's originator's first bytes go to each row's `sniff`, in
this order, and the first that knows them wins; a flow nobody claims is
retired (its packets counted, nothing read). A connection an analyzer
announced (FTP's data connections, Reporter.expect) comes before the table.
"""

from __future__ import annotations

from sensors import decode as dec
from sensors.analyzer import Row
from sensors.extract import dns, ftp, http, smb, smtp, tls

PROTOCOLS: tuple[Row, ...] = (
    Row(
        "dns",
        dns.DnsAnalyzer,
        ports=dns.DNS_PORTS,
        transports=frozenset({dec.PROTO_UDP, dec.PROTO_TCP}),
        replies_first=dns.replies_first,
    ),
    Row("ftp", ftp.FtpAnalyzer, ports=ftp.FTP_PORTS),
    Row("http", http.HttpAnalyzer, sniff=http.looks_like_request),
    Row("tls", tls.TlsAnalyzer, sniff=tls.looks_like_tls),
    Row("smb", smb.SmbAnalyzer, sniff=smb.looks_like_smb),
    Row("smtp", smtp.SmtpAnalyzer, sniff=smtp.looks_like_smtp),
)
