/*
  Vigía's starter pack: broad, low-noise rules for content seen on state
  links (HTTP bodies, mail attachments, FTP transfers). Written for Vigía;
  each rule says what it looks for in its meta.
*/

rule eicar_test_file : test
{
    meta:
        description = "The EICAR anti-malware test file (a harmless test string)"
        severity = "low"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar at 0
}

rule php_webshell_eval_input : webshell
{
    meta:
        description = "PHP that evaluates request input: the core of most web shells"
        severity = "high"
    strings:
        $php = "<?php" nocase
        $e1 = /eval\s*\(\s*(base64_decode\s*\(\s*)?\$_(POST|GET|REQUEST|COOKIE)/ nocase
        $e2 = /assert\s*\(\s*\$_(POST|GET|REQUEST)/ nocase
        $e3 = /(system|passthru|shell_exec)\s*\(\s*\$_(POST|GET|REQUEST)/ nocase
    condition:
        $php and any of ($e*)
}

rule powershell_encoded_download : dropper
{
    meta:
        description = "PowerShell started hidden with an encoded command or a web download"
        severity = "medium"
    strings:
        $ps = "powershell" nocase
        $h = /-w(indowstyle)?\s+hidden/ nocase
        $enc = /-e(nc|ncodedcommand)?\s+[A-Za-z0-9+\/=]{40,}/ nocase
        $dl1 = "DownloadString(" nocase
        $dl2 = "Invoke-WebRequest" nocase
    condition:
        $ps and ($enc or ($h and any of ($dl*)))
}

rule office_macro_autoopen : maldoc
{
    meta:
        description = "An OLE Office document with an auto-run macro and a shell call"
        severity = "medium"
    strings:
        $ole = { D0 CF 11 E0 A1 B1 1A E1 }
        $a1 = "AutoOpen" nocase
        $a2 = "Document_Open" nocase
        $a3 = "Workbook_Open" nocase
        $s1 = "Shell" nocase
        $s2 = "WScript.Shell" nocase
        $s3 = "CreateObject" nocase
    condition:
        $ole at 0 and any of ($a*) and any of ($s*)
}
