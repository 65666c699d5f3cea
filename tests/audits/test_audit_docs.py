"""The swaps shown in docs/audits.md run as written (each block with its library installed) and
give samples of the documented shape."""

import importlib.util
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed")

DOC = Path(__file__).resolve().parents[2] / "docs" / "audits.md"
NEEDS = {
    "diffusers DiTPipeline": "diffusers",
    "denoising-diffusion-pytorch": "einops",
    "k-diffusion samplers": "k_diffusion",
    "flow_matching ODESolver": "flow_matching",
}


def _blocks():
    text = DOC.read_text(encoding="utf-8").split("## The swaps", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python no-run\n(.*?)^```", text, flags=re.S | re.M)


def test_four_swaps_of_at_most_five_lines_of_refcfg_api():
    blocks = _blocks()
    assert len(blocks) == 4
    for code in blocks:
        lines = [ln for ln in code.splitlines() if ln.strip() and not ln.startswith("#")]
        assert len(lines) <= 6, code  # imports included; no class definitions
        assert "class " not in code


@pytest.mark.slow
@pytest.mark.parametrize("i", range(4))
def test_swap_runs(i):
    code = _blocks()[i]
    first = code.splitlines()[0]
    for key, module in NEEDS.items():
        if key in first:
            mod = module
            break
    else:
        raise AssertionError(first)
    if importlib.util.find_spec(mod) is None or importlib.util.find_spec("torch") is None:
        pytest.skip(f"{mod} not installed")
    if mod == "einops" and importlib.util.find_spec("denoising_diffusion_pytorch") is None:
        pytest.skip("denoising-diffusion-pytorch not installed")
    ns = {"torch": torch}
    exec(compile(code, f"docs/audits.md swap {i + 1}", "exec"), ns)
    x = ns["x"]
    assert x.shape[-1] == 2 and x.ndim == 2 and bool(torch.isfinite(x).all())
