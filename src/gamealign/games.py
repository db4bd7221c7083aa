"""The preference-game track: the study's algorithms, run as they run on an LLM, on games solved exactly.

Each algorithm's own comparison plan, example building (`build_examples`) and loss (`loss`) — the code the
LLM study trains with, unchanged — drive a tabular softmax policy on synthetic preference games, where the
KL-regularised Nash equilibrium, the duality gap and every win rate are exact (`gamealign.tabular`). One
iteration is one round of the study: K samples per context from π_t (several groups per context), a judge
that returns ONE Bernoulli label from P per comparison the algorithm's plan reads (charged as in the study:
identical samples tie without a judge), the algorithm's examples, and its loss minimised on the policy
(L-BFGS from π_t, as a round starts from the previous iterate). Offline algorithms (DPO, SPAC) get one
annotated sample of π_ref at iteration 1 and keep it, as in the study; SPAC draws fresh unlabelled self-play
samples of π_t every iteration.

Games (C contexts of n responses each, all seeded):
  bt       transitive: P_ij = σ(r_i − r_j), r ~ N(0, 1) — a Bradley–Terry model holds exactly
  general  P_ij ~ U(0, 1) above the diagonal — intransitive in general
  cyclic   a balanced tournament (n odd): y_i beats y_{i+1}, …, y_{i+(n−1)/2} (mod n) with P = s ~ U(0.7, 0.95)
           per context — rock–paper–scissors for n = 3; every response beats exactly half the others
π_ref per context: uniform, or random (Dirichlet(1)).

Exact mode (`exact=True`, K = 2 only): instead of drawing samples and labels, every pair of samples (y, y')
and, for y ≠ y', both labels are enumerated as groups weighted by π_t(y) π_t(y') P(label): the loss is the
population loss, so one iteration lands on the algorithm's closed form (tests/test_games.py).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import tabular as T
from .algorithms import get_algorithm
from .algorithms.base import Example, Group

FAMILIES = ("bt", "general", "cyclic")


@dataclass
class Game:
    family: str
    P: np.ndarray        # [C, n, n], P[c, i, j] = P(y_i ≻ y_j | x_c), P + Pᵀ = 1
    pi_ref: np.ndarray   # [C, n]

    @property
    def contexts(self) -> int:
        return self.P.shape[0]

    @property
    def n(self) -> int:
        return self.P.shape[1]


def make_game(family: str, contexts: int, n: int, seed: int, ref: str = "random") -> Game:
    """One seeded game of `family` (module docstring)."""
    rng = np.random.default_rng(seed)
    Ps = []
    for _ in range(contexts):
        if family == "bt":
            r = rng.normal(0.0, 1.0, n)
            P = 1.0 / (1.0 + np.exp(-(r[:, None] - r[None, :])))
        elif family == "general":
            P = T.random_preferences(n, rng)
        elif family == "cyclic":
            if n % 2 == 0:
                raise ValueError(f"game.responses: the cyclic family needs an odd number of responses, got {n}")
            s = rng.uniform(0.7, 0.95)
            P = np.full((n, n), 0.5)
            for i in range(n):
                for d in range(1, (n - 1) // 2 + 1):
                    P[i, (i + d) % n], P[(i + d) % n, i] = s, 1 - s
        else:
            raise ValueError(f"game.families: unknown family {family!r} (known: {', '.join(FAMILIES)})")
        Ps.append(P)
    if ref == "uniform":
        pi_ref = np.full((contexts, n), 1.0 / n)
    elif ref == "random":
        pi_ref = rng.dirichlet(np.ones(n), size=contexts)
        pi_ref = np.maximum(pi_ref, 1e-3)
        pi_ref /= pi_ref.sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"game.ref: {ref!r} is not uniform or random")
    return Game(family, np.stack(Ps), pi_ref)


def regularisation(algo: str, hp: dict) -> float:
    """The τ of the KL(π_ref)-regularised game whose equilibrium the algorithm's iteration targets (0: none —
    SPPO, iterative DPO and BoN are anchored to π_t, not π_ref, so their gap is the unregularised exploitability)."""
    return {"inpo": lambda: hp["rho"] * hp["eta"], "wind": lambda: hp["beta"], "ipo": lambda: hp["tau"],
            "dpo": lambda: hp["beta"], "spac": lambda: hp["beta"]}.get(algo, lambda: 0.0)()


def gap(game: Game, pi: np.ndarray, tau: float) -> float:
    """Mean over contexts of the duality gap at τ (τ = 0: the exploitability max_y P(y ≻ π) − ½)."""
    if tau > 0:
        return float(np.mean([T.duality_gap(pi[c], game.P[c], game.pi_ref[c], tau) for c in range(game.contexts)]))
    return float(np.mean([T.exploitability(pi[c], game.P[c]) for c in range(game.contexts)]))


def win_rate(game: Game, pi: np.ndarray, other: np.ndarray) -> float:
    """Mean over contexts of P(π ≻ other) = πᵀ P other."""
    return float(np.mean([pi[c] @ game.P[c] @ other[c] for c in range(game.contexts)]))


# --- sampling and judging ---------------------------------------------------------------------------
def _resp(i: int) -> str:
    return f"y{i}"


def _labelled_group(game: Game, c: int, ys, rng: np.random.Generator, pid: str, plan_seed: int) -> Group:
    """A group of samples `ys` of context c whose every distinct pair carries one Bernoulli label from P. The
    algorithm's example building reads only the pairs its plan names, and only those are charged (a label
    nobody reads was never asked for; labels are independent, so this equals judging the plan's pairs)."""
    k = len(ys)
    prefs = np.full((k, k), 0.5)
    for i in range(k):
        for j in range(i + 1, k):
            if ys[i] != ys[j]:
                prefs[i, j] = float(rng.random() < game.P[c, ys[i], ys[j]])
                prefs[j, i] = 1.0 - prefs[i, j]
    return Group(pid, [_resp(y) for y in ys], prefs, [True] * k, plan_seed=plan_seed)


def draw_groups(game: Game, pi: np.ndarray, k: int, per_context: int, rng: np.random.Generator, tag: str,
                plan_seed: int, label: bool = True) -> list[Group]:
    """`per_context` groups of K samples of π per context (labelled unless `label` is False)."""
    out = []
    for c in range(game.contexts):
        for m in range(per_context):
            ys = [int(y) for y in rng.choice(game.n, size=k, p=pi[c])]
            pid = f"{c}/{tag}{m}"
            if label:
                out.append(_labelled_group(game, c, ys, rng, pid, plan_seed))
            else:
                out.append(Group(pid, [_resp(y) for y in ys], None, [True] * k, plan_seed=plan_seed))
    return out


def exact_groups(game: Game, pi: np.ndarray, plan_seed: int) -> tuple[list[Group], dict[str, float]]:
    """Every K = 2 outcome as a group, with its probability: (y, y') ~ π × π, then y ≻ y' with probability P."""
    groups, weight = [], {}
    for c in range(game.contexts):
        for a, b in itertools.product(range(game.n), repeat=2):
            p_pair = pi[c, a] * pi[c, b]
            labels = [(0.5, 1.0)] if a == b else [(1.0, game.P[c, a, b]), (0.0, 1.0 - game.P[c, a, b])]
            for z, p_label in labels:
                pid = f"{c}/{a}-{b}-{z:g}"
                prefs = np.array([[0.5, z], [1.0 - z, 0.5]])
                groups.append(Group(pid, [_resp(a), _resp(b)], prefs, [True, True], plan_seed=plan_seed))
                weight[pid] = p_pair * p_label
    return groups, weight


# --- one round of the algorithm's loss on the tabular policy ---------------------------------------
def _batch(examples: list[Example], logits, log_ref, log_prev, weight: dict[str, float] | None):
    import torch

    ctx = torch.tensor([int(e.prompt_id.split("/")[0]) for e in examples])
    idx = torch.tensor([[int(r[1:]) for r in e.responses] for e in examples])
    rows = ctx[:, None].expand_as(idx)
    fixed = {"ref": log_ref[rows, idx], "prev": log_prev[rows, idx], "ntok": torch.ones(idx.shape, dtype=torch.float64)}
    for key in examples[0].fields:
        fixed[key] = torch.tensor([e.fields[key] for e in examples], dtype=torch.float64)
    if weight is not None:
        fixed["weight"] = torch.tensor([weight[e.prompt_id] for e in examples], dtype=torch.float64)
    return rows, idx, fixed


def minimise_round(algo, examples: list[Example], theta, pi_ref: np.ndarray, weight: dict[str, float] | None = None,
                   max_iter: int = 100):
    """θ after minimising the algorithm's loss on `examples`, starting from θ = θ_t, the logits of π_t ([C, n]
    float64 tensor), which is also the frozen "prev" policy."""
    import torch

    if not examples:
        return theta
    log_ref = torch.log(torch.as_tensor(pi_ref))
    log_prev = torch.log_softmax(theta, dim=-1)   # not log(softmax): a response π_t gives no mass stays finite
    rows, idx, fixed = _batch(examples, theta, log_ref, log_prev, weight)
    param = theta.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([param], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logp = torch.log_softmax(param, dim=-1)[rows, idx]
        loss, _ = algo.loss({"logp": logp, **fixed})
        loss.backward()
        return loss

    opt.step(closure)
    return param.detach()


# --- the loop ---------------------------------------------------------------------------------------
def run(algo_name: str, hparams: dict, game: Game, *, iterations: int, k: int, groups_per_context: int,
        seed: int, exact: bool = False, max_iter: int = 100, tau: float | None = None) -> list[dict]:
    """One algorithm on one game: a row of exact metrics per iteration (iteration 0 = π_ref).

    Columns: iteration, samples_cum, judge_calls_cum, gap (at the algorithm's regularisation, `regularisation`),
    gap_game (at the game's τ, `tau`), exploitability, win_vs_ref, win_vs_nash (against the τ-regularised
    equilibrium)."""
    import torch

    algo = get_algorithm(algo_name, hparams)
    if exact and (k != 2 or not algo.online):
        raise ValueError("exact mode enumerates K = 2 samples of an online algorithm's own iterate")
    own_tau = regularisation(algo_name, hparams)
    tau = own_tau if tau is None else tau
    nash = np.stack([T.regularized_nash(game.P[c], game.pi_ref[c], tau) for c in range(game.contexts)]) if tau > 0 \
        else None
    rng = np.random.default_rng(seed)
    py_rng = random.Random(seed)
    theta = torch.log(torch.as_tensor(game.pi_ref, dtype=torch.float64))
    samples = calls = 0
    offline = None

    def row(t, pi):
        return {"iteration": t, "samples_cum": samples, "judge_calls_cum": calls, "gap": gap(game, pi, own_tau),
                "gap_game": gap(game, pi, tau), "exploitability": gap(game, pi, 0.0),
                "win_vs_ref": win_rate(game, pi, game.pi_ref),
                "win_vs_nash": win_rate(game, pi, nash) if nash is not None else float("nan")}

    rows = [row(0, game.pi_ref)]
    for t in range(1, iterations + 1):
        pi_t = torch.softmax(theta, dim=-1).numpy()
        plan_seed = seed * 100003 + t
        weight = None
        if exact:
            groups, weight = exact_groups(game, pi_t, plan_seed)
            examples = algo.build_examples(groups, py_rng)
        elif algo.online:
            groups = draw_groups(game, pi_t, k, groups_per_context, rng, f"r{t}g", plan_seed)
            samples += len(groups) * k
            examples = algo.build_examples(groups, py_rng)
            calls += sum(g.comparisons_read() for g in groups)
        else:
            if offline is None:   # the study's offline data: one annotated sample of π_ref (= SFT), kept
                offline = draw_groups(game, game.pi_ref, k, groups_per_context, rng, "off", plan_seed)
                samples += len(offline) * k
            if getattr(algo, "self_play", False):
                selfplay = draw_groups(game, pi_t, k, groups_per_context, rng, "off", plan_seed, label=False)
                samples += len(selfplay) * k
                examples = algo.build_examples_with_offline(offline, selfplay, py_rng)
            else:
                examples = algo.build_examples(offline, py_rng)
            if t == 1:
                calls += sum(g.comparisons_read() for g in offline)
        theta = minimise_round(algo, examples, theta, game.pi_ref, weight, max_iter)
        rows.append(row(t, torch.softmax(theta, dim=-1).numpy()))
    return rows


# --- the study track ---------------------------------------------------------------------------------
def settled(rows: list[dict], threshold: float, column: str = "judge_calls_cum") -> float:
    """`column` at the first iteration from which the gap stays below `threshold` to the last iteration (NaN:
    never — a run that dips below and comes back has not converged)."""
    at = float("nan")
    for r in rows:
        if r["gap"] < threshold:
            if at != at:
                at = float(r[column])
        else:
            at = float("nan")
    return at


def run_family(cfg: dict, family: str, seed: int = 0, progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Every algorithm × seed of the `game` config section on one family: (curve rows, per-run rows). Replicate s
    plays game derive_seed(seed, "game", family, s) — the same game for every algorithm."""
    from tqdm import tqdm

    from .config import derive_seed

    jobs = [(a, s) for s in range(cfg["seeds"]) for a in cfg["algorithms"]]
    curves, runs = [], []
    for algo, s in tqdm(jobs, desc=f"game {family}", unit="run", disable=not progress, mininterval=5):
        hp = cfg["algorithms"][algo]
        game = make_game(family, cfg["contexts"], cfg["responses"], derive_seed(seed, "game", family, s), cfg["ref"])
        rows = run(algo, hp, game, iterations=cfg["iterations"], k=cfg["k"], groups_per_context=cfg["groups_per_context"],
                   seed=derive_seed(seed, "game-run", family, algo, s), max_iter=cfg["max_iter"], tau=cfg["tau"])
        curves += [{"family": family, "algorithm": algo, "seed": s, **r} for r in rows]
        last = rows[-1]
        runs.append({"family": family, "algorithm": algo, "seed": s, "tau_own": regularisation(algo, hp),
                     "final_gap": last["gap"], "final_gap_game": last["gap_game"],
                     "final_exploitability": last["exploitability"], "final_win_vs_ref": last["win_vs_ref"],
                     "final_win_vs_nash": last["win_vs_nash"],
                     "judge_calls_to_threshold": settled(rows, cfg["threshold"]),
                     "samples_to_threshold": settled(rows, cfg["threshold"], "samples_cum"),
                     "judge_calls_total": last["judge_calls_cum"], "samples_total": last["samples_cum"]})
    return curves, runs


def _median_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Median over seeds with a 95% percentile-bootstrap CI; a run that never settled counts as +∞ (so a median
    of ∞ reads "not reached")."""
    v = np.where(np.isnan(values), np.inf, values)
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(v, size=(n_boot, len(v)), replace=True), axis=1)
    return float(np.median(v)), float(np.quantile(boots, 0.025, method="lower")), \
        float(np.quantile(boots, 0.975, method="higher"))


def threshold_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per family × algorithm: judge calls and samples to a settled gap below the threshold (median, CI over
    seeds), how many seeds settled, and the final gap (mean over seeds)."""
    out = []
    for (fam, algo), d in runs.groupby(["family", "algorithm"], sort=False):
        calls = _median_ci(d["judge_calls_to_threshold"].to_numpy(float))
        samples = _median_ci(d["samples_to_threshold"].to_numpy(float))
        out.append({"family": fam, "algorithm": algo, "tau_own": d["tau_own"].iloc[0],
                    "settled": f"{int(d['judge_calls_to_threshold'].notna().sum())}/{len(d)}",
                    "judge_calls_median": calls[0], "judge_calls_ci_low": calls[1], "judge_calls_ci_high": calls[2],
                    "samples_median": samples[0], "samples_ci_low": samples[1], "samples_ci_high": samples[2],
                    "final_gap_mean": d["final_gap"].mean(), "final_exploitability_mean": d["final_exploitability"].mean(),
                    "judge_calls_total": d["judge_calls_total"].mean(), "seeds": len(d)})
    return pd.DataFrame(out)


def plot_family(curves: pd.DataFrame, family: str, path) -> None:
    """Gap against cumulative judge calls and against cumulative samples: mean over seeds per iteration, with a
    95% bootstrap band over seeds (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    rng = np.random.default_rng(0)
    for algo, d in curves.groupby("algorithm", sort=False):
        gaps = d.pivot(index="iteration", columns="seed", values="gap").to_numpy()
        boots = np.stack([gaps[:, rng.integers(0, gaps.shape[1], gaps.shape[1])].mean(axis=1) for _ in range(500)])
        lo, hi = np.quantile(boots, [0.025, 0.975], axis=0)
        for ax, col in zip(axes, ("judge_calls_cum", "samples_cum")):
            x = d.groupby("iteration")[col].mean().to_numpy()
            line, = ax.plot(x, gaps.mean(axis=1), label=algo)
            ax.fill_between(x, np.maximum(lo, 1e-6), hi, color=line.get_color(), alpha=0.2)
    for ax, label in zip(axes, ("judge calls (cumulative)", "samples (cumulative)")):
        ax.set_xscale("symlog", linthresh=100)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("duality gap at the algorithm's τ (τ = 0: exploitability)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"preference games: {family} (mean over seeds, 95% bootstrap band)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
