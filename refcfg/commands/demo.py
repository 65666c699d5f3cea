"""``refcfg demo``: the main job on the built-in default problem, in about two minutes on 2 cores.

1. exact fields: identities the notes derive, checked on samples of p_t (eq. 41/42, 59-62, 65);
2. CFG sampling with the exact field at several w: class confidence, likelihood, distance to the
   exact conditional law and to the tilted law p(x|y)^w p(x)^(1-w)/Z;
3. a short CFG training of an MLP (label dropout, eqs. 63-67) with a progress bar;
4. learned vs exact: per-t field errors and samples at the same w;
5. figures, the interactive page, and a report (HTML, self-contained, and Markdown) in ``--out``.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

DEMO_WS = (0.0, 1.0, 2.0, 3.0, 5.0)


def add_parser(sub):
    p = sub.add_parser("demo", help="exact fields, CFG sampling, a learned field, figures and a "
                       "report on the default problem (about 2 minutes)")
    p.add_argument("--problem", default="two-class-2d",
                   help="problem name or .toml file (default two-class-2d)")
    p.add_argument("--n", type=int, default=4000, help="particles per guidance weight (default 4000)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--out", default="refcfg-demo", help="output directory (default ./refcfg-demo)")
    p.add_argument("--train-steps", type=int, default=None,
                   help="steps of the short CFG training (default 6000; 0 skips training)")
    p.add_argument("--fast", action="store_true",
                   help="small sizes everywhere (a smoke test in a few seconds)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _exact_checks(path, n, seed):
    """Identities of the notes on x ~ p_t(x, y): returns a Table."""
    from ..report import Table
    rng = np.random.default_rng([seed, 1])
    rows = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        z, y = path.mixture.sample(n, seed=rng)
        v = path.schedule.values(t)
        x = v.alpha * z + v.beta * rng.standard_normal(z.shape)
        y0 = np.zeros(n, dtype=np.int64)
        u = path.velocity(x, t, y0)
        scale = float(np.max(np.abs(u))) or 1.0
        # eq. 62 (classifier guidance) = eq. 65 (CFG) for exact fields, at w = 3
        cg = path.classifier_guided_velocity(x, t, y0, 3.0)
        cfg = path.cfg_velocity(x, t, y0, 3.0)
        diff_cg = float(np.max(np.abs(cg - cfg))) / scale
        # eq. 41/42: u = a_t score + b_t x (a_t, b_t diverge where alpha_t = 0)
        if path.schedule.alpha(t) > 0.0:
            conv = path.velocity(x, t, y0, method="conversion")
            diff_conv = float(np.max(np.abs(conv - u))) / scale
        else:
            diff_conv = "undefined (alpha_t = 0)"
        # noisy classifier (eq. 59-61) on its own class: E_{x ~ p_t(x|y=0)} p_t(y=0|x)
        x0 = x[y == 0]
        p0 = float(np.mean(np.exp(path.class_log_probs(x0, t)[:, 0])))
        rows.append([t, diff_cg, diff_conv, p0])
    return Table(["t", "|CG - CFG| / max|u|", "|a s + b x - u| / max|u|",
                  "E p_t(y=0|x), x ~ p_t(.|0)"], rows,
                 caption=f"Exact identities on x ~ p_t(x, y), N = {n} per t, seed {seed}: "
                         "classifier guidance (eq. 62) vs CFG (eq. 65) at w = 3; the conversion "
                         "formula (eq. 41/42); the noisy classifier (eq. 59-61)")


def _tilted_reference(path, y, w, n, seed):
    """Samples of the tilted law p(x|y)^w p(x)^(1-w)/Z by importance resampling, and the effective
    sample size of the weights. Since p(x|y)/p(x) = p(y|x)/p(y) (Bayes, t = 1), the tilted law is
    proportional to p(x) p(y|x)^w and to p(x|y) p(y|x)^(w-1): proposals from p(x) for w < 1 and
    from p(x|y) for w >= 1 keep the weights bounded by 1."""
    rng = np.random.default_rng([seed, 2, int(round(w * 1000))])
    m = 20 * n
    if w < 1.0:
        xs, _ = path.mixture.sample(m, seed=rng)
        power = w
    else:
        xs = path.mixture.class_gmm(y).sample(m, rng)
        power = w - 1.0
    logw = power * path.class_log_probs(xs, 1.0)[:, y]
    p = np.exp(logw - logw.max())
    p /= p.sum()
    return xs[rng.choice(m, size=n, p=p)], float(1.0 / np.sum(p * p))


def _energy(a, b, seed):
    from ..metrics import energy_distance
    return float(energy_distance(a, b, max_n=2000, seed=seed))


def _cfg_table(path, y, n, steps, seed):
    from ..metrics import class_confidence, mean_log_likelihood
    from ..report import Table
    from ..sampling import sample
    ref_cond, _ = path.mixture.sample(n, seed=np.random.default_rng([seed, 3]), y=y)
    rows, samples = [], {}
    for w in DEMO_WS:
        x = sample(path.cfg(y, w), n, sampler="heun", steps=steps, seed=seed)
        samples[w] = x
        cc = class_confidence(x, path.mixture, y)
        ll, _ = mean_log_likelihood(x, path.mixture, y)
        ref_tilt, ess = _tilted_reference(path, y, w, n, seed)
        rows.append([w, cc.mean_prob, cc.accuracy, ll, _energy(x, ref_cond, seed),
                     _energy(x, ref_tilt, seed), ess / (20 * n)])
    floor = _energy(ref_cond, path.mixture.sample(n, seed=np.random.default_rng([seed, 4]),
                                                  y=y)[0], seed)
    table = Table(["w", "E p(y|x)", "accuracy", "mean log p(x|y)", "ED to p(x|y)",
                   "ED to tilted", "ESS frac"], rows,
                  caption=f"Exact CFG sampler (Heun, {steps} steps, N = {n}, seed {seed}), y = {y}. "
                          f"ED = squared energy distance (noise floor of two exact samples: "
                          f"{floor:.2e}); tilted = p(x|y)^w p(x)^(1-w)/Z by importance resampling "
                          f"(ESS frac = effective sample size / proposals)")
    return table, samples, floor


def _train(problem, steps, seed, progress):
    try:
        from ..learn.train import train_cfg
    except ImportError as exc:  # the learn package is optional for the demo
        print(f"   (skipped: refcfg.learn is not available: {exc})")
        return None
    res = train_cfg(problem, steps=steps, seed=seed, progress=progress)
    print(f"   trained {res.model!r}\n   {res.losses.size} steps in {res.seconds:.1f} s, "
          f"final loss (mean of last 100) {res.losses[-100:].mean():.4f}")
    return res


def _learned_tables(path, model, y, n, steps, seed):
    from ..learn.compare import field_errors
    from ..learn.fields import learned_cfg
    from ..metrics import class_confidence
    from ..report import Table
    from ..sampling import sample
    t_grid = np.linspace(0.0, 1.0, 11)
    err = field_errors(path, model, ws=(3.0,), t_grid=t_grid, n=min(n, 2000), seed=seed)
    frows = [[t, err["conditional"][i], err["unconditional"][i], err["cfg"][3.0][i]]
             for i, t in enumerate(t_grid)]
    ftab = Table(["t", "conditional", "unconditional", "CFG w=3"], frows,
                 caption=f"Learned vs exact field: relative L2 error E|u_theta - u|^2 / E|u|^2 over "
                         f"(x, y) ~ p_t, N = {min(n, 2000)} per t, seed {seed}")
    srows = []
    for w in (1.0, 3.0):
        xl = sample(learned_cfg(model, y, w, path.schedule), n, sampler="heun", steps=steps,
                    seed=seed)
        xe = sample(path.cfg(y, w), n, sampler="heun", steps=steps, seed=seed)
        xf = sample(path.cfg(y, w), n, sampler="heun", steps=steps, seed=seed + 1)
        srows.append([w, _energy(xl, xe, seed), _energy(xf, xe, seed),
                      class_confidence(xl, path.mixture, y).mean_prob,
                      class_confidence(xe, path.mixture, y).mean_prob])
    stab = Table(["w", "ED learned-exact", "ED exact-exact (floor)", "E p(y|x) learned",
                  "E p(y|x) exact"], srows,
                 caption=f"Learned vs exact CFG sampler from the same initial noise (Heun, {steps} "
                         f"steps, N = {n}, seed {seed}), y = {y}. The floor compares two exact runs "
                         f"from independent noise (seeds {seed}, {seed + 1}); paired runs can fall "
                         f"below it")
    return ftab, stab


def _blas_one_thread():
    """Small matrix products (the MLP's 512 x 128 layers) run ~10x faster on one BLAS thread than
    on several competing for 2 busy cores; threadpoolctl, when installed, pins BLAS to one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def run(args) -> int:
    with _blas_one_thread():
        return _run(args)


def _run(args) -> int:
    import refcfg
    from .. import figures, interactive
    from ..report import Report

    for name in ("n", "seed"):
        v = getattr(args, name)
        if v < (1 if name == "n" else 0):
            raise ValueError(f"--{name} must be {'>= 1' if name == 'n' else '>= 0'}, got {v}")
    fast = bool(args.fast)
    n = min(args.n, 300) if fast else args.n
    steps = 20 if fast else 100
    train_steps = args.train_steps if args.train_steps is not None else (40 if fast else 6000)
    if train_steps < 0:
        raise ValueError(f"--train-steps must be >= 0, got {train_steps}")
    progress = not args.no_progress
    out = Path(args.out)
    mix = refcfg.problem(args.problem)
    path = refcfg.GMMPath(mix, "linear")
    y = 0
    start = time.perf_counter()
    print(f"refcfg demo: problem {args.problem} ({mix.n_classes} classes, d = {mix.d}, "
          f"{mix.marginal.K} components), linear schedule, seed {args.seed}, N = {n}"
          + (" [--fast]" if fast else ""))

    report = Report(f"refcfg demo: {args.problem}")
    report.text(f"Problem {args.problem}: {mix.n_classes} classes, d = {mix.d}, "
                f"{mix.marginal.K} Gaussian components; schedule alpha_t = t, beta_t = 1 - t "
                f"(t = 0 noise, t = 1 data); CFG u~ = w u(x|y) + (1 - w) u(x|null) (notes eq. 65; "
                f"Ho-Salimans omega = w - 1). Every number below is reproducible with "
                f"`refcfg demo --seed {args.seed} --n {args.n}`.")

    _section("1. exact fields: the notes' identities on samples of p_t")
    t1 = _exact_checks(path, n, args.seed)
    print(t1.to_text())
    report.heading("1. Exact fields").table(t1)

    _section(f"2. CFG sampling with the exact field at w in {DEMO_WS}")
    t2, samples, _ = _cfg_table(path, y, n, steps, args.seed)
    print(t2.to_text())
    report.heading("2. CFG with the exact field").table(t2)
    report.text("w = 1 samples p(x|y) (its distance to p(x|y) is at the noise floor). For w > 1 the "
                "confidence rises, but the samples do not follow the tilted law p(x|y)^w "
                "p(x)^(1-w)/Z either: CFG is a heuristic (notes, section 5).")

    model = None
    if train_steps > 0:
        _section(f"3. a short CFG training ({train_steps} steps, label dropout eta = 0.1)")
        res = _train(args.problem, train_steps, args.seed, progress)
        if res is not None:
            model = res.model
            out.mkdir(parents=True, exist_ok=True)
            saved = model.save(out / "model.npz")
            print(f"   saved {saved}")
            report.heading("3. A learned CFG field")
            report.text(f"An MLP ({model.n_params} parameters) trained for {res.losses.size} "
                        f"steps ({res.seconds:.1f} s) by conditional flow matching with label "
                        f"dropout eta = 0.1 (notes eqs. 63-67); saved as model.npz "
                        f"(`refcfg figures --model {saved}`).")
            _section("4. learned vs exact")
            ftab, stab = _learned_tables(path, model, y, n, steps, args.seed)
            print(ftab.to_text())
            print()
            print(stab.to_text())
            report.heading("4. Learned vs exact").table(ftab).table(stab)

    _section("5. figures, interactive page and report")
    fig_dir = out / "figures"
    written = figures.make_figures(fig_dir, path, model=model, seed=args.seed, formats=("png",),
                                   fast=fast, progress=progress)
    report.heading("5. Figures")
    for name, files in written.items():
        report.figure(files[0], caption=figures.CAPTIONS.get(name, name))
    page = None
    if path.d == 2:
        page = interactive.write_page(out / "interactive.html", path, y=y, fast=fast,
                                      seed=args.seed, problem=str(args.problem))
        report.text("The interactive page interactive.html (next to this report) shows the exact "
                    "guided field and CFG samples with sliders for w and t.")
    paths = report.write(out)
    elapsed = time.perf_counter() - start
    print(f"   figures: {fig_dir}\n   interactive page: "
          f"{page if page is not None else '(2-D problems only)'}\n   report: {paths['markdown']}")
    print(f"\ndone in {elapsed:.1f} s. Open the report:\n{paths['html'].resolve()}")
    return 0
