"""Just enough PromQL to check what the dashboard and the alert rules ask of /metrics.

``parse(expr)`` tokenizes a PromQL expression (Grafana's ``$variables`` allowed) and returns the
series selectors it reads (metric name and label matchers) and the label lists of its
``by``/``without``/``on``/``ignoring``/``group_left``/``group_right`` clauses with the selectors
each applies to. ``problems(expr, series)`` checks them against the series an exposition has:
every metric name exists, every matcher's label is a label of that metric (and a value it is
compared with, ``=``, ``!=`` or a plain alternation ``a|b``, one it takes), every grouping
label one of the metrics it groups. Labels that Prometheus adds when it scrapes
(``TARGET_LABELS``) exist on every series.

Not a full parser: no ``@``, no string functions that make labels (``label_replace``,
``label_join``: refused, so that a new label cannot slip past the check), no selectors without
a metric name. It refuses what it does not understand rather than passing it.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

# Labels the scrape adds to every series: Prometheus' own (job, instance) and the Prometheus
# Operator's for a ServiceMonitor (namespace, service, pod, container, endpoint).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "service", "pod", "container", "endpoint"})
# Series Prometheus makes itself for each target, not in any exposition.
SYNTHETIC_SERIES = {"up": frozenset()}

AGGREGATORS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
GROUPING = frozenset({"by", "without"})
MATCHING = frozenset({"on", "ignoring", "group_left", "group_right"})
KEYWORDS = GROUPING | MATCHING | frozenset({"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"})
REFUSED_FUNCTIONS = frozenset({"label_replace", "label_join"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{[A-Za-z_][A-Za-z0-9_:]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z_][A-Za-z0-9_]*\]\])
  | (?P<number>(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:[a-zA-Z][0-9a-zA-Z]*)*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}\[\]:])
    """,
    re.VERBOSE,
)


class PromQLError(ValueError):
    """An expression this parser does not understand."""


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclasses.dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str  # unquoted


@dataclasses.dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[Matcher, ...]
    at: int  # token index


@dataclasses.dataclass(frozen=True)
class Grouping:
    clause: str  # by, without, on, ignoring, group_left, group_right
    labels: tuple[str, ...]
    scope: tuple[int, int]  # token indexes [start, end) of the expression it applies to


@dataclasses.dataclass(frozen=True)
class Parsed:
    selectors: tuple[Selector, ...]
    groupings: tuple[Grouping, ...]

    def in_scope(self, grouping: Grouping) -> list[Selector]:
        start, end = grouping.scope
        return [s for s in self.selectors if start <= s.at < end]


def tokenize(expr: str) -> list[Token]:
    tokens, at = [], 0
    while at < len(expr):
        m = _TOKEN.match(expr, at)
        if m is None:
            raise PromQLError(f"cannot read {expr[at : at + 20]!r} in {expr!r}")
        at = m.end()
        kind = m.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append(Token(kind, m.group()))
    return tokens


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _pairs(tokens: list[Token]) -> dict[int, int]:
    """Each opening bracket's index -> its closing one's."""
    closing = {")": "(", "}": "{", "]": "["}
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for i, t in enumerate(tokens):
        if t.kind != "op":
            continue
        if t.text in "({[":
            stack.append(i)
        elif t.text in closing:
            if not stack or tokens[stack[-1]].text != closing[t.text]:
                raise PromQLError(f"unbalanced {t.text!r} at token {i}")
            pairs[stack.pop()] = i
    if stack:
        raise PromQLError(f"unclosed {tokens[stack[-1]].text!r}")
    return pairs


def _label_list(tokens: list[Token], open_at: int, close_at: int) -> tuple[str, ...]:
    labels = []
    for t in tokens[open_at + 1 : close_at]:
        if t.kind == "ident":
            labels.append(t.text)
        elif t.text != ",":
            raise PromQLError(f"not a label list: {' '.join(x.text for x in tokens[open_at : close_at + 1])}")
    return tuple(labels)


def _matchers(tokens: list[Token], open_at: int, close_at: int) -> tuple[Matcher, ...]:
    inner = [t for t in tokens[open_at + 1 : close_at] if t.text != ","]
    if len(inner) % 3:
        raise PromQLError(f"matchers: {' '.join(t.text for t in inner)}")
    out = []
    for label, op, value in zip(inner[0::3], inner[1::3], inner[2::3], strict=True):
        if label.kind != "ident" or op.text not in ("=", "!=", "=~", "!~") or value.kind != "string":
            raise PromQLError(f"matcher: {label.text}{op.text}{value.text}")
        out.append(Matcher(label.text, op.text, _unquote(value.text)))
    return tuple(out)


def _enclosing(pairs: Mapping[int, int], tokens: list[Token], at: int) -> tuple[int, int]:
    """The innermost parenthesized expression around token ``at`` (the whole one if none)."""
    best = (0, len(tokens))
    for open_at, close_at in pairs.items():
        if tokens[open_at].text == "(" and open_at < at < close_at and close_at - open_at < best[1] - best[0]:
            best = (open_at + 1, close_at)
    return best


def parse(expr: str) -> Parsed:
    tokens = tokenize(expr)
    pairs = _pairs(tokens)
    selectors: list[Selector] = []
    groupings: list[Grouping] = []
    skip: set[int] = set()  # tokens already read as part of a clause or matchers
    for i, t in enumerate(tokens):
        if i in skip:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if t.text == "[":  # a range or subquery: durations and variables only
            skip.update(range(i, pairs[i] + 1))
        elif t.text == "{":
            raise PromQLError(f"a selector without a metric name in {expr!r}")
        elif t.kind != "ident":
            continue
        elif t.text in AGGREGATORS and nxt is not None and (nxt.text == "(" or nxt.text in GROUPING):
            at = i + 1
            clause = None
            if tokens[at].text in GROUPING:  # sum by (a) (expr)
                clause = (tokens[at].text, at + 1)
                skip.update(range(at, pairs[at + 1] + 1))
                at = pairs[at + 1] + 1
            if tokens[at].text != "(":
                raise PromQLError(f"{t.text}: no argument in {expr!r}")
            arg = (at + 1, pairs[at])
            after = pairs[at] + 1
            if clause is None and after < len(tokens) and tokens[after].text in GROUPING:  # sum (expr) by (a)
                clause = (tokens[after].text, after + 1)
                skip.update(range(after, pairs[after + 1] + 1))
            if clause is not None:
                name, open_at = clause
                groupings.append(Grouping(name, _label_list(tokens, open_at, pairs[open_at]), arg))
        elif t.text in MATCHING:
            labels: tuple[str, ...] = ()
            if nxt is not None and nxt.text == "(":
                labels = _label_list(tokens, i + 1, pairs[i + 1])
                skip.update(range(i + 1, pairs[i + 1] + 1))
            elif t.text in ("on", "ignoring"):
                raise PromQLError(f"{t.text} without a label list in {expr!r}")
            groupings.append(Grouping(t.text, labels, _enclosing(pairs, tokens, i)))
        elif t.text in GROUPING:
            raise PromQLError(f"{t.text} outside an aggregation in {expr!r}")
        elif t.text in REFUSED_FUNCTIONS:
            raise PromQLError(f"{t.text} makes labels this check cannot follow: {expr!r}")
        elif nxt is not None and nxt.text == "(":
            continue  # a function call: its arguments are read as they come
        elif t.text in KEYWORDS or t.text in AGGREGATORS:
            continue
        elif nxt is not None and nxt.text == "{":
            selectors.append(Selector(t.text, _matchers(tokens, i + 1, pairs[i + 1]), i))
            skip.update(range(i + 1, pairs[i + 1] + 1))
        else:
            selectors.append(Selector(t.text, (), i))
    if not selectors:
        raise PromQLError(f"no metric in {expr!r}")
    return Parsed(tuple(selectors), tuple(groupings))


# ---- what an exposition has ---------------------------------------------------------------------


@dataclasses.dataclass
class Series:
    """Per series name (``_bucket``, ``_count``, ``_total`` ... as exposed): its label names and
    the values each takes."""

    labels: dict[str, set[str]] = dataclasses.field(default_factory=lambda: defaultdict(set))


def exposition_series(samples: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, Series]:
    out: dict[str, Series] = defaultdict(Series)
    for name, labels in samples:
        series = out[name]
        for k, v in labels.items():
            series.labels[k].add(v)
    for name, labels in SYNTHETIC_SERIES.items():
        out.setdefault(name, Series({k: set() for k in labels}))
    return dict(out)


def label_values_query(query: str) -> tuple[str, str] | None:
    """Grafana's ``label_values(selector, label)``: (selector, label); None for another query."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query)
    return (m[1], m[2]) if m else None


def _is_literal(value: str) -> bool:
    return "$" not in value and "[[" not in value


def _alternatives(regex: str) -> list[str] | None:
    """The values of a plain alternation (``a|b|c``); None for any other regular expression."""
    parts = regex.split("|")
    return parts if all(re.fullmatch(r"[A-Za-z0-9_.:+-]+", p) for p in parts) else None


def problems(
    expr: str,
    series: Mapping[str, Series],
    known_values: Mapping[tuple[str, str], Iterable[str]] | None = None,
) -> list[str]:
    """What ``expr`` reads that ``series`` does not have. ``known_values``: (series name, label)
    -> values the code can produce though the exposition does not show them yet (an outcome that
    did not happen): a value compared with must be shown or known."""
    known = {k: set(v) for k, v in (known_values or {}).items()}
    try:
        parsed = parse(expr)
    except (PromQLError, KeyError, IndexError) as exc:
        return [f"{expr!r}: {exc!r}"]
    found = []

    def labels_of(name: str) -> set[str]:
        return set(series[name].labels) | TARGET_LABELS if name in series else set()

    for sel in parsed.selectors:
        if sel.name not in series:
            found.append(f"no series {sel.name} in /metrics")
            continue
        for m in sel.matchers:
            if m.label == "__name__":
                continue
            if m.label not in labels_of(sel.name):
                found.append(
                    f"{sel.name} has no label {m.label!r} (it has {sorted(series[sel.name].labels)})"
                )
                continue
            if m.label in TARGET_LABELS or not _is_literal(m.value):
                continue
            # a value compared with, equal or not (a renamed one would turn a != into "any")
            values = {m.value} if m.op in ("=", "!=") else set(_alternatives(m.value) or ())
            taken = series[sel.name].labels[m.label] | known.get((sel.name, m.label), set())
            missing = sorted(v for v in values if v and v not in taken)
            if missing:
                found.append(f"{sel.name}{{{m.label}}} never takes {missing} (seen: {sorted(taken)})")
    for g in parsed.groupings:
        scope = [s for s in parsed.in_scope(g) if s.name in series]
        for label in g.labels:
            having = [s.name for s in scope if label in labels_of(s.name)]
            if g.clause in ("by", "on") and len(having) < len(scope):
                lacking = sorted({s.name for s in scope} - set(having))
                found.append(f"{g.clause} ({label}): not a label of {lacking}")
            elif g.clause not in ("by", "on") and scope and not having:
                found.append(f"{g.clause} ({label}): a label of none of {sorted({s.name for s in scope})}")
    return found


def result_labels(expr: str, series: Mapping[str, Series]) -> set[str]:
    """Labels the result of ``expr`` may carry, for a legend's ``{{label}}``: those of the ``by``
    clause over the widest expression if there is one, else those of the series it reads (and
    the target labels)."""
    parsed = parse(expr)
    by = [g for g in parsed.groupings if g.clause == "by"]
    if by:
        return set(max(by, key=lambda g: g.scope[1] - g.scope[0]).labels)
    labels = set(TARGET_LABELS)
    for s in parsed.selectors:
        if s.name in series:
            labels |= set(series[s.name].labels)
    return labels
