#!/usr/bin/env python3
"""Import enum types from a vendor C header into api-spec YAML.

Usage:
    codegen/tools/import_enums.py HEADER ENUM [ENUM ...]

ENUM is the typedef name (e.g. CUdevice_attribute) or the enum tag
(e.g. CUdevice_attribute_enum). For each one, prints a `types:` list item in
the spec format (docs/spec-format.md):

  - name: CUdevice_attribute
    kind: enum
    tag: CUdevice_attribute_enum
    doc: Device properties
    values:
      - {name: CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, value: 1, doc: "..."}

Values are resolved to numbers (implicit values count up from the previous
one; references to earlier enumerators are substituted). Aliases keep their
own name with the resolved number. Sentinels (`*_MAX`, `*_FORCE_INT`) without
an explicit value are skipped: their number changes between header versions.
A value's doc is the first sentence of its doxygen comment (`/** ... */`
before it or `/**< ... */` after it), on one line, with doxygen markup
removed; values without a comment get no doc.

Needs only python3 and PyYAML (used to check that the output parses back).
"""

import json
import re
import sys

import yaml

SENTINEL_SUFFIXES = ("_MAX", "_FORCE_INT")
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "approx.", "resp.")


def strip_comments_keep_docs(body):
    """Tokenize an enum body into ('doc', text, trailing) / ('tok', text)."""
    tokens = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if body.startswith("/*", i):
            end = body.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated comment")
            raw = body[i:end + 2]
            i = end + 2
            if raw.startswith("/**<") or raw.startswith("/*!<"):
                tokens.append(("doc", raw[4:-2], True))
            elif raw.startswith("/**") or raw.startswith("/*!"):
                tokens.append(("doc", raw[3:-2], False))
            continue
        if body.startswith("//", i):
            end = body.find("\n", i)
            end = n if end < 0 else end
            raw = body[i:end]
            i = end
            if raw.startswith("///<") or raw.startswith("//!<"):
                tokens.append(("doc", raw[4:], True))
            elif raw.startswith("///") or raw.startswith("//!"):
                tokens.append(("doc", raw[3:], False))
            continue
        if c == "#" and (i == 0 or body[body.rfind("\n", 0, i) + 1:i].strip() == ""):
            # preprocessor line inside the enum: ignore (with continuations)
            while True:
                end = body.find("\n", i)
                if end < 0:
                    i = n
                    break
                line = body[i:end]
                i = end + 1
                if not line.rstrip().endswith("\\"):
                    break
            continue
        if c.isspace():
            i += 1
            continue
        if c == ",":
            tokens.append(("tok", ","))
            i += 1
            continue
        # an expression chunk up to the next comma / comment
        j = i
        while j < n and body[j] != "," and not body.startswith("/*", j) \
                and not body.startswith("//", j):
            j += 1
        tokens.append(("tok", body[i:j].strip()))
        i = j
    return tokens


def clean_doc(raw):
    """First sentence of a doxygen comment, one line, markup removed."""
    lines = []
    for line in raw.splitlines():
        line = line.strip()
        line = re.sub(r"^\*+\s?", "", line)
        lines.append(line)
    text = " ".join(l for l in lines if l)
    text = re.sub(r"\*+$", "", text).strip()
    if not text:
        return None
    deprecated_prefix = False
    deprecated_suffix = False
    m = re.search(r"[\\@]deprecated\b", text)
    if m:
        before = text[:m.start()].strip()
        after = text[m.end():].strip()
        if before:
            text = before
            deprecated_suffix = True
        else:
            text = after
            deprecated_prefix = True
    # doxygen markup
    text = re.sub(r"[\\@](?:p|c|e|b|a|ref|em)\s+", "", text)
    text = re.sub(r"[\\@]([A-Za-z_]+)", r"\1", text)
    text = re.sub(r"(?<!\w)::", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = first_sentence(text)
    if deprecated_suffix:
        text = text.rstrip(".") + " (deprecated)."
    if deprecated_prefix:
        text = "Deprecated: " + text
    return text


def first_sentence(text):
    pos = 0
    while True:
        m = re.compile(r"\.(\s+|$)").search(text, pos)
        if not m:
            return text
        head = text[:m.start() + 1]
        if any(head.endswith(a) or head.endswith(" " + a) for a in ABBREVIATIONS):
            pos = m.end()
            continue
        # "(see ::cuEventQuery() and ...)." : don't end inside parentheses
        if head.count("(") > head.count(")"):
            pos = m.end()
            continue
        return head


def find_enum(header_text, name):
    """Return (typedef_name, tag, type_doc, body) of enum `name`."""
    for m in re.finditer(r"typedef\s+enum\s+(\w+)?\s*\{", header_text):
        tag = m.group(1)
        depth = 0
        i = m.end() - 1
        while True:
            if header_text[i] == "{":
                depth += 1
            elif header_text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        body = header_text[m.end():i]
        tm = re.match(r"\}\s*(\w+)\s*;", header_text[i:])
        tname = tm.group(1) if tm else None
        if name not in (tag, tname):
            continue
        # the doxygen comment right before the typedef
        type_doc = None
        before = header_text[:m.start()].rstrip()
        if before.endswith("*/"):
            start = before.rfind("/*")
            raw = before[start:]
            if raw.startswith("/**") or raw.startswith("/*!"):
                type_doc = clean_doc(raw[3:-2])
        return tname, tag, type_doc, body
    raise KeyError("enum %s not found" % name)


def eval_value(expr, known):
    expr = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", expr)

    def sub(m):
        ident = m.group(0)
        if ident in known:
            return "(%d)" % known[ident]
        if re.match(r"0[xX][0-9a-fA-F]+$", ident):
            return ident
        raise ValueError("unknown identifier %r in %r" % (ident, expr))

    py = re.sub(r"\b[A-Za-z_]\w*\b", sub, expr)
    py = re.sub(r"\(\s*(?:unsigned\s+)?(?:int|long)\s*\)", "", py)
    if not re.match(r"^[\s0-9a-fA-FxX()+\-*/%<>|&~^]*$", py):
        raise ValueError("cannot evaluate %r" % expr)
    py = py.replace("/", "//")
    return int(eval(py, {"__builtins__": {}}))  # noqa: S307 - checked above


def parse_values(body):
    tokens = strip_comments_keep_docs(body)
    values = []
    known = {}
    pending_doc = None
    last = None       # last entry, for trailing /**< */ docs
    nxt = 0
    for tok in tokens:
        if tok[0] == "doc":
            if tok[2]:
                if last is not None and last.get("doc") is None:
                    last["doc"] = clean_doc(tok[1])
            else:
                pending_doc = tok[1]
            continue
        text = tok[1]
        if text == ",":
            continue
        m = re.match(r"^([A-Za-z_]\w*)\s*(?:=\s*(.+))?$", text, re.S)
        if not m:
            raise ValueError("cannot parse enumerator %r" % text)
        name, expr = m.group(1), m.group(2)
        if expr is not None:
            value = eval_value(expr.strip(), known)
        else:
            value = nxt
        known[name] = value
        nxt = value + 1
        entry = {"name": name, "value": value,
                 "doc": clean_doc(pending_doc) if pending_doc else None,
                 "explicit": expr is not None}
        pending_doc = None
        last = entry
        values.append(entry)
    return [v for v in values
            if v["explicit"] or not v["name"].endswith(SENTINEL_SUFFIXES)]


def strip_conditionals(body):
    """Drops the lines between an #if and its #endif, and the directives."""
    out, depth = [], 0
    for line in body.split("\n"):
        d = line.strip()
        if d.startswith("#if"):
            depth += 1
            continue
        if d.startswith("#endif"):
            depth = max(0, depth - 1)
            continue
        if d.startswith("#"):
            continue
        if not depth:
            out.append(line)
    return "\n".join(out)


def render(tname, tag, type_doc, values):
    out = []
    out.append("  - name: %s" % tname)
    out.append("    kind: enum")
    out.append("    tag: %s" % tag)
    out.append("    doc: %s" % json.dumps(type_doc or tname))
    out.append("    values:")
    for v in values:
        item = "{name: %s, value: %d" % (v["name"], v["value"])
        if v["doc"]:
            item += ", doc: %s" % json.dumps(v["doc"])
        item += "}"
        out.append("      - " + item)
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], encoding="utf-8", errors="replace") as f:
        header = f.read()
    chunks = []
    for name in argv[2:]:
        tname, tag, type_doc, body = find_enum(header, name)
        # Enumerators under #if (the vendor's own build) are not the API's.
        body = strip_conditionals(body)
        values = parse_values(body)
        chunk = render(tname, tag, type_doc, values)
        # check the YAML parses back to what we meant
        back = yaml.safe_load(chunk)[0]
        assert back["name"] == tname and len(back["values"]) == len(values)
        for b, v in zip(back["values"], values):
            assert b["name"] == v["name"] and b["value"] == v["value"]
            assert b.get("doc") == v["doc"]
        chunks.append(chunk)
    sys.stdout.write("\n".join(chunks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
