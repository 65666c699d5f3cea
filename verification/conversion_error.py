"""How wrong is u = a_t score + b_t x (eq. 41/42) near t = 0? Measured against the stable posterior form.

Run: python verification/conversion_error.py   (prints a Markdown table; used in docs/numerics.md)
"""

import numpy as np

import refcfg


def measure(problem="two-class-2d", schedules=("linear", "cosine", "sqrt"), n=2000, seed=0):
    path_x = refcfg.problem(problem)
    x = np.random.default_rng(seed).standard_normal((n, path_x.d)) * 2.0
    rows = []
    for name in schedules:
        path = refcfg.GMMPath(path_x, name)
        for t in (1e-12, 1e-9, 1e-6, 1e-3, 1e-1, 0.5, 0.9):
            u = path.velocity(x, t, 0)
            uc = path.velocity(x, t, 0, method="conversion")
            err = np.max(np.linalg.norm(uc - u, axis=1) / np.linalg.norm(u, axis=1))
            rows.append((name, t, err))
    return rows


if __name__ == "__main__":
    print("| schedule | t | max relative error of the conversion form |")
    print("|---|---|---|")
    for name, t, err in measure():
        print(f"| {name} | {t:g} | {err:.2e} |")
