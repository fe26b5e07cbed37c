"""Template code cache: compiling 500 distinct templates in a fresh process, as
`vigil test` and the daemon's start do, with the disk cache warm, cold and absent.

    .venv/bin/python bench/template_cache.py

Each figure is the CPU time (process_time, so other load on the machine barely
moves it) a new process spends getting the compiled code of every template
(engine/templates/renderer.py _Compiled.get), median of 7 processes. `vigil
validate` compiles no template through this cache (it only checks syntax), so
bench/validate.py does not show it. No asserts: figures for a person.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TEMPLATES, RUNS = 500, 7


def sources() -> list[str]:
    shapes = (
        "{{{{ labels.host | upper }}}} at {{{{ value | round(1) }}}} ({i})",
        "{{% for a in alerts %}}{{{{ a.labels.host }}}}={{{{ a.value }}}} {i}\n{{% endfor %}}",
        "{{% if value > {i} %}}high{{% else %}}low{{% endif %}} {{{{ labels | length }}}}",
    )
    return [shapes[i % len(shapes)].format(i=i) for i in range(TEMPLATES)]


def child() -> None:
    from engine.templates import renderer

    compiled = renderer._Compiled(renderer.make_env())
    t0 = time.process_time()
    for s in sources():
        compiled.get(s)
    print(f"{(time.process_time() - t0) * 1000:.1f}")


def run(cache_home: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child"],
        env={**os.environ, "XDG_CACHE_HOME": cache_home},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-tpl-") as tmp:
        home = os.path.join(tmp, "xdg")
        no_cache = os.path.join(tmp, "a-file")  # cannot hold a folder: no cache
        open(no_cache, "w").close()
        cold = run(home)
        warm = statistics.median(run(home) for _ in range(RUNS))
        none = statistics.median(run(no_cache) for _ in range(RUNS))
    print(f"{TEMPLATES} templates, CPU ms per process (median of {RUNS}):")
    print(f"  disk cache warm:  {warm:7.1f} ms ({warm / TEMPLATES * 1000:.0f} us per template)")
    print(f"  disk cache cold:  {cold:7.1f} ms (first process: compiles and writes)")
    print(f"  no cache:         {none:7.1f} ms ({none / TEMPLATES * 1000:.0f} us per template)")


if __name__ == "__main__":
    child() if sys.argv[1:] == ["--child"] else main()
