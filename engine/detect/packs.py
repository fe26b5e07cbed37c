"""The built-in pattern packs, by name: `packs: [sqli, xss, traversal, cmdi, scanners]`.

Every regex runs case-insensitively on URL-decoded text (engine/detect/patterns.py)
and lists the tokens (`any`) without which it cannot match: the tokens feed the
one prefilter scan per field, so a benign line never runs these regexes.
Auth failures, 401/403/404 floods and credential stuffing are not patterns but
windows over fields (`where: {status: [...]}`, `distinct` users per ip): see
engine/detect/windows.py and the example in engine/detect/__init__.py.
"""

from __future__ import annotations

from engine.detect.patterns import Pattern

_SQL_FUNCS = ("sleep", "benchmark", "waitfor", "extractvalue", "updatexml", "load_file", "outfile")
_SCANNER_UAS = (
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "acunetix",
    "netsparker",
    "wpscan",
    "dirbuster",
    "gobuster",
    "feroxbuster",
    "ffuf",
    "wfuzz",
    "w3af",
    "openvas",
    "havij",
    "commix",
    "xsstrike",
    "jaeles",
    "whatweb",
    "zmeu",
    "fimap",
    "hydra",
)

PACKS: dict[str, tuple[Pattern, ...]] = {
    "sqli": (
        Pattern(
            "sqli_union",
            "sqli",
            "url",
            r"union(\s|/\*.*?\*/|\(|\+)+(all\s+|distinct\s+)?select\b",
            ("union",),
        ),
        Pattern(
            "sqli_tautology",
            "sqli",
            "url",
            r"['\"`]\s*\)?\s*(or|and|xor|\|\||&&)\s*\(?\s*['\"]?[\w-]*['\"]?\s*(=|<|>|like\b|is\b)",
            ("'", '"', "`"),
        ),
        Pattern(
            "sqli_numeric_tautology",
            "sqli",
            "url",
            r"(\s|\*/|\))(or|and)(\s|/\*.*?\*/)+(\d+)\s*=\s*\d+",
            (" or", " and", "*/or", "*/and", ")or", ")and"),
        ),
        Pattern("sqli_quote_comment", "sqli", "url", r"['\"]\s*\)?\s*(--|#|/\*|;)", ("'", '"')),
        Pattern(
            "sqli_stacked",
            "sqli",
            "url",
            r";\s*(drop|delete|insert|update|shutdown|exec|declare|truncate|alter)\s",
            (";",),
        ),
        Pattern(
            "sqli_functions",
            "sqli",
            "url",
            r"\b(sleep|benchmark|pg_sleep|extractvalue|updatexml|load_file)\s*\(|"
            r"waitfor\s+delay|into\s+(out|dump)file",
            _SQL_FUNCS,
        ),
        Pattern(
            "sqli_schema",
            "sqli",
            "url",
            None,
            ("information_schema", "sysobjects", "pg_catalog", "sqlite_master", "@@version"),
        ),
    ),
    "xss": (
        Pattern("xss_script", "xss", "url", r"<\s*/?\s*script\b", ("script",)),
        Pattern(
            "xss_tag",
            "xss",
            "url",
            r"<\s*(iframe|svg|img|object|embed|body|math|details|marquee|video|audio)\b",
            ("<",),
        ),
        Pattern("xss_handler", "xss", "url", r"<[^>]*\bon[a-z]{3,}\s*=", ("<",)),
        Pattern(
            "xss_js_uri",
            "xss",
            "url",
            r"(javascript|vbscript|livescript)\s*:",
            ("javascript", "vbscript", "livescript"),
        ),
        Pattern(
            "xss_dom",
            "xss",
            "url",
            r"document\.(cookie|domain|location|write)|\b(alert|prompt|confirm|eval)\s*\(|"
            r"string\.fromcharcode",
            ("document.", "alert", "prompt", "confirm", "eval", "fromcharcode"),
        ),
    ),
    "traversal": (
        Pattern("traversal_dotdot", "traversal", "url", r"\.\.[/\\]|[/\\]\.\.($|[/\\?])", ("..",)),
        Pattern(
            "traversal_files",
            "traversal",
            "url",
            r"/etc/(passwd|shadow|group|hosts)\b|/proc/self/|boot\.ini|win\.ini|"
            r"[/\\]windows[/\\]system32|\.htpasswd",
            ("/etc/", "/proc/", "boot.ini", "win.ini", "system32", ".htpasswd"),
        ),
        Pattern("traversal_nul", "traversal", "url", None, ("\x00",)),
    ),
    "cmdi": (
        Pattern(
            "cmdi_chain",
            "cmdi",
            "url",
            r"(;|\||&&|\$\(|`)\s*(cat|ls|id|whoami|uname|wget|curl|nc|ncat|bash|sh|python\d?|"
            r"perl|ping|nslookup|echo|rm|chmod|busybox)\b",
            (";", "|", "&&", "$(", "`"),
        ),
        Pattern(
            "cmdi_substitution",
            "cmdi",
            "url",
            r"\$\{\s*(jndi|env|sys|lower|upper|date|::-)",
            ("${",),
        ),
        # log4shell and its kin arrive in headers as often as in the URL
        Pattern(
            "cmdi_substitution_ua",
            "cmdi",
            "ua",
            r"\$\{\s*(jndi|env|sys|lower|upper|date|::-)",
            ("${",),
        ),
        Pattern(
            "cmdi_shell_path",
            "cmdi",
            "url",
            r"/bin/(ba|z|da)?sh\b|cmd\.exe|powershell(\.exe)?\b",
            ("/bin/", "cmd.exe", "powershell"),
        ),
    ),
    "scanners": (
        Pattern("scanner_ua", "scanners", "ua", None, _SCANNER_UAS),
        Pattern(
            "scanner_probe",
            "scanners",
            "url",
            r"/\.(env|git|svn|hg|aws|ds_store)(/|$|\?)|/wp-config\.php|/phpmyadmin|/vendor/phpunit|"
            r"/cgi-bin/|/actuator/|/server-status|/boaform|/hnap1|/\.well-known/security\.txt\.bak",
            (
                "/.",
                "wp-config",
                "phpmyadmin",
                "phpunit",
                "cgi-bin",
                "actuator",
                "server-status",
                "boaform",
                "hnap1",
            ),
        ),
    ),
}


def pack(name: str) -> tuple[Pattern, ...]:
    try:
        return PACKS[name]
    except KeyError:
        raise ValueError(f"unknown pack {name!r}; built in: {', '.join(sorted(PACKS))}") from None
