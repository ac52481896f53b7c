#!/usr/bin/env python3
"""lakegen: generate LAKE's headers, stubs, dispatch table and tests from api-spec/.

Usage: lakegen.py --out DIR [--compat-dir DIR] [--vendor-include SPEC=DIR ...]
                  [--cpp CMD] [--list] SPEC.yaml [SPEC.yaml ...]

Writes into DIR (only files whose content changed, so builds stay incremental):
  lake_<spec>.h          public API header (kernel and user space)
  lake_conform_<spec>.c  compile-time conformance check against the vendor header
  lake_proto_gen.h       API ids and wire layouts (all specs)
  lake_stubs.c           client stubs (lake.ko and liblake)
  lake_compat.c          vendor symbol names, refused functions, cuGetProcAddress, host memory
  lake_vendor_gen.h      lakeD's vendor function tables
  lake_dispatch.c        lakeD's dispatch table
  lake_fake.c/.h         the recording test double of the vendor libraries (tests only)
  test_roundtrip.c       a libcheck round-trip test of every remoted function
  lake_test_image.ptx    the tests' module image as a file (cuModuleLoad's tests)
and into the compat directory the vendor-named headers (cuda.h, nvml.h).

--vendor-include SPEC=DIR names the directory of a spec's vendor header: each
function's vendor symbol is then derived from the header's '#define name
name_vN' (run through the C preprocessor, --cpp, default 'cc -E -P'), and the
versions cuGetProcAddress answers for from the spec's typedefs header.

A problem in a spec is reported as 'file:line: problem' with exit status 1.
"""

import argparse
import os
import re
import shlex
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import jinja2
    from lakespec import SpecError, SpecSet, VendorInfo, size_c, MAX_HANDLES, MAX_CHECKED, ATTR_BYTES
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"lakegen: missing Python module ({e.name}): run scripts/install-deps.sh")

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def cdecl(c_type, name):
    """'T name' or 'T *name', kernel style."""
    return f"{c_type}{'' if c_type.endswith('*') else ' '}{name}"


def c_comment(text):
    return " ".join(str(text).split()).replace("*/", "* /")


def c_string(text):
    out = " ".join(str(text).split())
    return out.replace("\\", "\\\\").replace('"', '\\"')


def unique_values(values):
    seen, out = set(), []
    for v in values:
        if v["value"] not in seen:
            seen.add(v["value"])
            out.append(v)
    return out


HOOK_EMPTY = "\x01lake-empty-hook\x01"


def hook(text):
    """For a hook line '{{ ext.macro(...) | hook }}': the macro's lines, or a
    marker that render_all removes with its line, so that hooks with nothing
    to add leave no blank line in the generated code."""
    text = str(text)
    return text.rstrip("\n") if text.strip() else HOOK_EMPTY


def to_wire(p, expr):
    if p.type.kind == "handle":
        return f"(__u64)(uintptr_t)({expr})"
    return f"({p.type.wire})({expr})"


def from_wire(p, expr):
    if p.type.kind == "handle":
        return f"({p.type.name})(uintptr_t)({expr})"
    return f"({p.type.name})({expr})"


def read_once(p, expr):
    """A single load of output p from shared memory (plain for floats: the
    kernel has no FPU registers for a volatile load)."""
    if p.type.wire in ("float", "double"):
        return expr
    return f"LAKE_READ_ONCE({expr})"


def param_doc(p):
    """A parameter's kernel-doc line when the spec gives none."""
    if p.from_file:
        return "path of a module file, read by the caller (lakeD never opens it)"
    if p.kind == "kernel-params":
        return "kernel parameters, packed by the layout read from the module image"
    if p.kind == "launch-extra":
        return "CU_LAUNCH_PARAM_BUFFER_POINTER/SIZE list: an explicitly packed parameter buffer"
    if p.kind == "null-only":
        return "must be NULL"
    if p.kind == "buffer":
        return f"{p.dir}put buffer"
    if p.kind == "string":
        return f"string of at most {p.max - 1} characters"
    if p.kind == "local-out":
        return "output"
    return {"in": "input", "out": "output", "inout": "input and output"}[p.dir]


def test_string(f, p):
    """The value tests pass for string parameter p of f (a C identifier, so
    that it can also name a kernel in the test image)."""
    return f"{f.name}_{p.name}"


def vendor_arg(p):
    """How lakeD's dispatch passes parameter p to the vendor."""
    if p.kind == "launch-extra":
        return f"buf_{p.name} ? x_{p.name} : NULL"
    if p.by is not None:
        return f"a->{p.name}__given ? &priv_{p.name} : NULL"
    if p.kind == "handles":
        return f"buf_{p.name} ? hv_{p.name} : NULL"
    if p.kind == "attribute":
        return f"a->{p.name}__given ? (void *)attr_{p.name} : NULL"
    if p.kind == "string-out":
        return f"a->{p.name}__given ? &text_{p.name} : NULL"
    if p.checked:
        return f"buf_{p.name} ? ({p.plain_c_type})chk_{p.name} : NULL"
    if p.kind in ("null-only", "local-out"):
        return "NULL"
    if p.kind in ("buffer", "string"):
        return f"({p.plain_c_type})buf_{p.name}"
    if p.kind == "kernel-params":
        return f"kpp_{p.name}"
    if p.dir == "in":
        if p.type.kind == "handle":
            return f"h_{p.name}"
        return f"({p.type.plain})a->{p.name}"
    bit = f"(present & (1u << {p.out_bit}))"
    if p.sizes_extent:
        return f"({p.plain_c_type})&out_{p.name}"  # lakeD needs it to register a range
    if p.type.kind == "handle":
        return f"{bit} ? &out_{p.name} : NULL"
    return f"{bit} ? ({p.plain_c_type})&out_{p.name} : NULL"


def _walk_names(node, kinds, names):
    """Adds to names the name of every node of a size expression whose kind is
    in kinds ("param"/"deref": parameters; "member": struct members)."""
    if node[0] in kinds:
        names.add(node[1].name)
    for child in node[1:]:
        if isinstance(child, tuple):
            _walk_names(child, kinds, names)
        elif isinstance(child, list):
            for c in child:
                _walk_names(c, kinds, names)


def _walk_params(node, names):
    _walk_names(node, ("param", "deref"), names)


def _size_params(f):
    """Parameters that size a buffer or a device range a call touches: tests
    keep them small (the device ranges tests make are bigger)."""
    names = set()
    for p in f.buffers:
        _walk_params(p.size_ast, names)
    for p in f.ranges:
        _walk_params(p.extent_ast, names)
    return names


def _reservation_size(f, p):
    """Is p the size of an address range reservation: what the reserving
    call's extent names, or the size the call giving one back passes?"""
    names = set()
    for q in f.params:
        if q.lifetime == "reserves":
            _walk_params(q.extent_ast, names)
        if q.lifetime == "unreserves" and p is f.params[1]:
            return True
    return p.name in names


def _count_params(f, accepting=True):
    """Parameters that count handles or checked elements: tests use 3 (0
    for a checked buffer that accepts nothing, @accepting false)."""
    names = set()
    for p in f.params:
        empty = p.checked and p.allow[:1] == [(None, None)]
        if (p.kind == "handles" or p.checked) and empty != accepting:
            _walk_params(p.size_ast, names)
    return names


def test_value(f, p):
    """A deterministic, distinctive C literal for input parameter p of f."""
    if p.name in _count_params(f, accepting=False):
        return "0"
    if p.name in _count_params(f):
        return "3"
    if p.name in _size_params(f):
        return "24"
    if p.lifetime in ("retains", "releases"):
        return "7"      # the same value for the call that takes a reference and the one that drops it
    if _reservation_size(f, p):
        return "4096"   # the same for the call that reserves and the one that gives it back
    for q in f.params:
        if q.selector is p:
            return str(q.attr_types[0][0])
        if q.key is p:
            vals = p.type.values
            return str(vals[1]["value"] if len(vals) > 1 else vals[0]["value"])
    seed = (f.api_id or 0) * 64 + p.index * 4 + 1
    if p.extent_ast is not None or p.lifetime == "unreserves":
        return f"{seed * 65536}ULL"    # device ranges of different parameters do not overlap
    return _seed_literal(p.type.wire, seed)


def _seed_literal(wire, seed):
    if wire == "float":
        return f"{seed}.5f"
    if wire == "double":
        return f"{seed}.25"
    if wire in ("__u8", "char", "__s8"):
        return str(seed % 100)
    if wire in ("__s16", "__u16"):
        return str(seed % 30000)
    return str(seed * 3 + 1)


def member_slot(f, p, m):
    """The fake record slot of host-buffer member m of struct input p of f
    (after the parameters' own)."""
    return len(f.params) + f.struct_buffers.index((p, m))


def member_test_value(f, p, leaf, i):
    """The value tests give value leaf @leaf (number @i) of struct input @p."""
    t = p.type
    sizes, range_sizes, whens, selectors = set(), set(), {}, {}
    for m in t.buffer_members:
        _walk_names(m.size_ast, ("member",), sizes)
        if m.when:
            whens[m.when[0].name] = m.when[1]
    for m in t.range_members:
        # Small: a device range the kernel tests make must hold what they touch.
        _walk_names(m.extent_ast, ("member",), range_sizes)
        if m.when:
            whens.setdefault(m.when[0].name, m.when[1])
    for _, sel, allowed in t.selectors:
        selectors[sel] = allowed[0][0]
    for m in t.accepting_members:
        selectors.setdefault(m.name, m.accepted[0][0])
    seed = (f.api_id or 0) * 64 + p.index * 8 + i + 2
    if leaf["range"]:
        return f"{seed * 65536}ULL"    # device ranges of different members do not overlap
    if leaf["name"] in whens:
        return str(whens[leaf["name"]])
    if leaf["name"] in selectors:
        return str(selectors[leaf["name"]])
    if leaf["name"] in range_sizes:
        return "2"
    if leaf["name"] in sizes:
        return "3" if any(m.elem is not None and m.elem.needs_check for m in t.buffer_members) else "24"
    return _seed_literal(leaf["wire"], seed)


def fake_out_bits(f, p):
    """The IEEE bits of the float/double a fake writes into output p (for
    kernel code, which compares floats without using the FPU)."""
    value = 0xA500 + f.api_id * 64 + p.index
    if p.type.wire == "float":
        return "0x%08xu" % struct.unpack("<I", struct.pack("<f", float(value)))[0]
    return "0x%016xull" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]


# The PTX image tests load (lake_testvals.h's LAKE_TEST_PTX, and as a file
# lake_test_image.ptx): one kernel whose parameters are what the test double
# reports (8, 4 and 8 bytes at 0, 8 and 16).
TEST_PTX = """// Generated by codegen/lakegen.py from api-spec/; do not edit.  LAKE's test PTX.
.version 8.0
.target sm_90
.address_size 64
.visible .entry {kernel}(
	.param .u64 p0,
	.param .u32 p1,
	.param .u64 p2
)
{{
	ret;
}}
"""


def c_literal(text):
    """text as a C string literal, one source line per line of text."""
    lines = text.splitlines(keepends=True)
    out = []
    for ln in lines:
        esc = ln.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n")
        out.append(f'"{esc}"')
    return " \\\n\t\t\t".join(out)


def test_real(f, p):
    """The fake vendor pointer/value a test registers for input handle p."""
    return f"0x{0xD0000 + (f.api_id or 0) * 256 + p.index * 16:x}ULL"


def needed_handles(f, arrays=True):
    """The handle (and destroyed tracked) types a test must create to call f
    (with @arrays false: those it cannot do without; handle arrays may be empty)."""
    out = {}
    for p in f.params:
        if p.type is None or p.dir != "in":
            continue
        if p.kind == "handles" and not arrays:
            continue
        if p.kind == "handles" or (p.kind is None and (
                p.type.kind == "handle" or p.lifetime in ("destroys", "unreserves")
                or p.extent_ast is not None or p.type.is_value)):
            out.setdefault(p.type.name, p)
        elif p.by is not None:
            for _, t in p.type.handle_leaves:
                out.setdefault(t.name, p)
            for m in p.type.range_members:
                out.setdefault(m.type.name, p)
        elif p.kind == "attribute":
            for _, _, t in p.attr_types[:1]:
                if t.kind == "handle":
                    out.setdefault(t.name, p)
    return out


def find_creators(specset):
    """For each handle or tracked type, the remoted function tests call to
    obtain one (its output), ordered so that a creator's own handle inputs
    come first.  Returns [(type, function, out param)].  A handle type some
    remoted function takes but none creates is a spec error."""
    remoted = [f for s in specset.specs for f in s.functions if f.remoted]
    wanted = [t for s in specset.specs for t in s.types if t.kind == "handle" or t.tracked]
    chosen, order = {}, []

    def needs(f):
        return set(needed_handles(f, arrays=False))

    progress = True
    while progress:
        progress = False
        for t in wanted:
            if t.name in chosen:
                continue
            cands = [(f, p) for f in remoted for p in f.outs
                     if p.type is t and not p.is_inout and needs(f) <= set(chosen)]
            cands.sort(key=lambda fp: fp[1].lifetime != "creates")
            if cands:
                chosen[t.name] = cands[0]
                order.append((t, *cands[0]))
                progress = True
    for f in remoted:
        for tname, p in needed_handles(f).items():
            if tname not in chosen:
                p.fail(f"takes a {tname}, but no remoted function that the tests can call "
                       f"outputs one (add the function that creates it)")
    return order, {t.name: (f, p) for t, f, p in order}


def fake_roles(f):
    """What the test double's device model does for f (lake_fake.c): the
    parts of the CUDA driver's behaviour that show a daemon's bookkeeping
    bugs -- device addresses handed out and reused, counted references to
    primary contexts, per-thread current contexts, global stream capture."""
    s = f.spec
    ctx_t = getattr(s, "context_type", None)
    roles = {}
    for p in f.params:
        if p.lifetime == "retains":
            roles["retain"] = p
        if p.lifetime == "releases":
            roles["release"] = p
        if p.kind is None and p.type is not None and p.type.is_range:
            if p.dir == "out" and p.lifetime in ("creates", "reserves"):
                roles["dev_alloc"] = p
            elif p.dir == "out" and p.parent is not None:
                roles["global_out"] = p
            elif p.dir == "in" and p.lifetime in ("destroys", "unreserves"):
                roles["dev_free"] = p
            elif p.dir == "in" and p.extent_ast is not None:
                roles.setdefault("dev_access", []).append(p)
        if ctx_t is not None and p.type is ctx_t:
            if p.dir == "out" and p.lifetime == "creates":
                roles["ctx_create"] = p
            elif p.dir == "in" and p.lifetime == "destroys":
                roles["ctx_destroy"] = p
            elif p.dir == "out" and len(f.params) == 1:
                roles["get_current"] = p
            elif p.dir == "out" and any(q.lifetime == "retains" for q in f.params):
                roles["primary_out"] = p
    if ctx_t is not None and f is s.helpers.get("set_current"):
        roles["set_current"] = f.params[0]
    # Needs a live current context: anything that takes or makes a resource
    # living in one (not the context calls themselves, not device queries).
    if ctx_t is not None and not any(p.type is ctx_t for p in f.params) and (
            any(p.kind == "kernel-params" for p in f.params) or
            any(p.type is not None and (p.type.kind == "handle" or p.type.tracked)
                for p in f.params)):
        roles["needs_context"] = True
    # CUDA's global stream capture: no spec attribute describes it, so it is
    # modelled by name.  While a GLOBAL capture runs anywhere in the process,
    # allocating and freeing device memory fails.
    if f.name == "cuStreamBeginCapture":
        roles["capture_begin"] = (f.params[0], f.params[1])
    if f.name == "cuStreamEndCapture":
        roles["capture_end"] = f.params[0]
    # (Stream-ordered allocation, which takes a stream, is allowed: it
    # becomes a node of the captured graph.)
    if ("dev_alloc" in roles or "dev_free" in roles) and not any(
            p.is_handle and p.type is getattr(s.helpers.get("stream_sync"), "params", [p])[0].type
            for p in f.params):
        roles["capture_unsafe"] = True
    return roles


def expected_out(f, p):
    """The C value the test double writes into output p of f (tests compare
    with it).  None for a device address: the double's allocator picks it."""
    roles = fake_roles(f)
    if p is roles.get("dev_alloc"):
        return None
    if p is roles.get("primary_out") or p is roles.get("get_current"):
        return "LAKE_FAKE_PRIMARY_CTX"   # (a thread that never set a context)
    if p is roles.get("global_out"):
        return f"lake_fake_global({f.api_id})"
    return f"lake_fake_out({f.api_id}, {p.index})"


def result_value(spec, name, fallback=None):
    """The number of the spec's result value @name (the test double writes
    results without the public header); @fallback, a value name, if absent."""
    for v in spec.result.values:
        if v["name"] == name:
            return v["value"]
    if fallback is None:
        raise KeyError(name)
    return result_value(spec, fallback)


def make_env():
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(cdecl=cdecl, c_comment=c_comment, c_string=c_string, unique_values=unique_values, hook=hook,
                       size_c=size_c, to_wire=to_wire, from_wire=from_wire,
                       vendor_arg=vendor_arg, read_once=read_once, c_literal=c_literal)
    env.globals.update(test_value=test_value, test_real=test_real, fake_out_bits=fake_out_bits,
                       fake_roles=fake_roles, result_value=result_value, expected_out=expected_out,
                       param_doc=param_doc, test_string=test_string,
                       member_test_value=member_test_value, member_slot=member_slot,
                       MAX_HANDLES=MAX_HANDLES, MAX_CHECKED=MAX_CHECKED, ATTR_BYTES=ATTR_BYTES)
    return env


def outputs(specset):
    """{file name: (template, extra context)} for every generated file."""
    out = {}
    for s in specset.specs:
        out[f"lake_{s.name}.h"] = ("lake_api.h.j2", {"spec": s})
        out[f"lake_conform_{s.name}.c"] = ("lake_conform.c.j2", {"spec": s})
    for name, tmpl in (("lake_proto_gen.h", "lake_proto_gen.h.j2"),
                       ("lake_stubs.c", "lake_stubs.c.j2"),
                       ("lake_vendor_gen.h", "lake_vendor_gen.h.j2"),
                       ("lake_dispatch.c", "lake_dispatch.c.j2"),
                       ("lake_fake.h", "lake_fake.h.j2"),
                       ("lake_testvals.h", "lake_testvals.h.j2"),
                       ("lake_ktest_roundtrip.c", "lake_ktest_roundtrip.c.j2"),
                       ("lake_fake.c", "lake_fake.c.j2"),
                       ("test_roundtrip.c", "test_roundtrip.c.j2"),
                       ("lake_test_image.ptx", "lake_test_image.ptx.j2"),
                       ("lake_compat.c", "lake_compat.c.j2")):
        out[name] = (tmpl, {})
    return out


def compat_outputs(specset):
    """{file name: (template, extra context)} for the compat directory."""
    return {s.compat_header: ("lake_api.h.j2", {"spec": s, "compat": True})
            for s in specset.specs}


def record_order(specset):
    """Struct and union types, each after the records it contains."""
    out, seen = [], set()

    def visit(t):
        if t.name in seen:
            return
        seen.add(t.name)
        for m in _all_members(t.members):
            if m.type is not None and m.type.is_record:
                visit(m.type)
            if m.elem is not None and m.elem.is_record:
                visit(m.elem)
        out.append(t)
    for s in specset.specs:
        for t in s.types:
            if t.is_record:
                visit(t)
    return out


def _all_members(members):
    for m in members:
        yield m
        yield from _all_members(m.members)


_C_TYPE_WORDS = {"const", "volatile", "unsigned", "signed", "int", "char", "short", "long",
                 "float", "double", "void", "struct", "union", "enum"}


def pfn_params(text):
    """The parameter types of a typedefs-header prototype, names dropped."""
    text = text.strip()
    if text in ("", "void"):
        return []
    out = []
    for decl in text.split(","):
        toks = re.findall(r"[A-Za-z_]\w*|\S", decl)
        if len(toks) > 1 and re.match(r"[A-Za-z_]", toks[-1]) and toks[-1] not in _C_TYPE_WORDS:
            toks = toks[:-1]
        out.append(toks)
    return out


def vendor_info(spec, inc_dir, cpp):
    """Runs the vendor header through the preprocessor: what each public
    name expands to (default and per-thread default stream), which functions
    it declares, and the ABI versions in the typedefs header."""
    header = os.path.join(inc_dir, spec.header)
    if not os.path.exists(header):
        raise SpecError(spec.path, spec.vendor_node.line,
                        f"vendor header {header} not found (--vendor-include {spec.name}={inc_dir})")
    names = [f.name for f in spec.all_functions]

    def expand(extra):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "names.c")
            with open(src, "w") as fh:
                for d in spec.vendor_defines:
                    fh.write(f"#define {d} 1\n")
                fh.write(f"#include <{spec.header}>\n")
                if spec.typedefs_header:
                    fh.write(f"#include <{spec.typedefs_header}>\n")
                fh.write("lake_vendor_names_begin\n")
                for n in names:
                    fh.write(f"lake_name_{n} {n} ;\n")
            cmd = shlex.split(cpp) + [f"-I{inc_dir}"] + extra + [src]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True)
            except OSError as e:
                raise SpecError(spec.path, spec.vendor_node.line,
                                f"cannot run the C preprocessor '{cpp}': {e.strerror}") from None
            if r.returncode != 0:
                raise SpecError(spec.path, spec.vendor_node.line,
                                f"the C preprocessor failed on {header}: {r.stderr.strip()[:500]}")
        text = r.stdout
        body, _, tail = text.partition("lake_vendor_names_begin")
        syms = {}
        for m in re.finditer(r"lake_name_(\w+)\s+(\w+)\s*;", tail):
            syms[m.group(1)] = m.group(2)
        return body, syms

    body, syms = expand([])
    _, ptds_syms = expand(["-DCUDA_API_PER_THREAD_DEFAULT_STREAM"])
    declared = set(re.findall(rf"\b{re.escape(spec.result_name)}\s+(\w+)\s*\(", body))
    ptds = {n for n in names if ptds_syms.get(n) != syms.get(n)}
    versions = {}
    visible = set()
    if spec.typedefs_header:
        # Every ABI a name has had (the raw text: legacy ones are declared
        # only for the vendor's own build), and those a program can see.
        pfn = r"\*\s*PFN_([A-Za-z0-9]+)_v(\d+)\s*\)\s*\(([^;]*)\)\s*;"
        tpath = os.path.join(inc_dir, spec.typedefs_header)
        try:
            with open(tpath, encoding="utf-8", errors="replace") as fh:
                ttext = fh.read()
        except OSError as e:
            raise SpecError(spec.path, spec.vendor_node.line,
                            f"cannot read the typedefs header {tpath}: {e.strerror}") from None
        for m in re.finditer(pfn, ttext):
            versions.setdefault(m.group(1), {})[int(m.group(2))] = pfn_params(m.group(3))
        versions = {k: sorted(v.items()) for k, v in versions.items()}
        visible = {(m.group(1), int(m.group(2))) for m in re.finditer(pfn, body)}
    return VendorInfo(spec.header, syms, declared, ptds, versions, visible)


def render_all(specset, rel_base):
    for s in specset.specs:
        s.rel = os.path.relpath(s.path, rel_base) if rel_base else s.path
    remoted = [f for s in specset.specs for f in s.functions if f.remoted]
    tracked = [t for s in specset.specs for t in s.types
               if t.kind == "handle" or t.tracked]
    wire_structs = record_order(specset)
    creators, creator_of = find_creators(specset)

    def expected_real(p):
        """What the fake receives for input p when a test passes a created one."""
        return expected_real_of(p.type)

    def expected_real_of(t):
        f, cp = creator_of[t.name]
        return f"lake_fake_out({f.api_id}, {cp.index})"

    def needs_creator(p):
        return p.kind is None and p.by is None and p.type is not None and p.dir == "in" and \
            (p.type.kind == "handle" or p.lifetime in ("destroys", "unreserves")
             or p.extent_ast is not None or p.type.is_value)

    def is_range(p):
        """A device address (a tracked scalar): the test double's allocator
        chooses it, so tests check that it is one, not what it is."""
        return p.kind is None and p.type is not None and p.type.is_range

    # For each type of counted reference, the function that takes one (tests
    # take a reference before they drop it).
    retainers = {}
    for sp in specset.specs:
        for f in sp.functions:
            for p in f.params:
                if p.lifetime == "retains" and f.remoted:
                    retainers.setdefault(p.type.name, f)

    # Address range reservations: (type, the function that makes one, its
    # output), for the tests of the function that gives one back.
    reservers = {}
    for sp in specset.specs:
        for f in sp.functions:
            for p in f.outs:
                if p.lifetime == "reserves" and f.remoted:
                    reservers.setdefault(p.type.name, (f, p))

    # Counted references: (type name, the function that drops one).
    ref_types = [(tname, f) for sp in specset.specs for tname, f in sp.releasers.items()]

    compat_functions = [f for s in specset.specs for f in s.compat_functions]
    learners = [f for f in remoted if f.learns]
    test_kernel = test_string(learners[0], learners[0].learns.name_param) if learners else "lake_test_kernel"
    test_ptx = TEST_PTX.format(kernel=test_kernel)
    common = dict(specs=specset.specs, remoted=remoted, tracked_types=tracked, ref_types=ref_types,
                  test_kernel=test_kernel, test_ptx=test_ptx,
                  creators=creators, creator_of=creator_of, expected_real=expected_real,
                  expected_real_of=expected_real_of, needed_handles=needed_handles,
                  needs_creator=needs_creator, is_range=is_range, retainers=retainers,
                  reservers=reservers,
                  compat_functions=compat_functions, compat=False,
                  wire_structs=wire_structs, hash=specset.hash, max_api=specset.max_api,
                  loop_spec_index={s.name: i for i, s in enumerate(specset.specs)})
    env = make_env()
    result, compat = {}, {}
    for target, outs in ((result, outputs(specset)), (compat, compat_outputs(specset))):
        for name, (tmpl, extra) in outs.items():
            ctx = dict(common)
            ctx.update(extra)
            text = env.get_template(tmpl).render(**ctx)
            target[name] = text.replace(HOOK_EMPTY + "\n", "")
    return result, compat


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate LAKE code from API specs.")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--base", default=None,
                    help="directory spec paths are shown relative to in generated files")
    ap.add_argument("--list", action="store_true", help="print the output file names and exit")
    ap.add_argument("--compat-dir", default=None,
                    help="where the vendor-named headers (cuda.h, nvml.h) go")
    ap.add_argument("--vendor-include", action="append", default=[], metavar="SPEC=DIR",
                    help="the directory of SPEC's vendor header: derive vendor symbols from it")
    ap.add_argument("--cpp", default="cc -E -P", help="the C preprocessor command")
    ap.add_argument("specs", nargs="+", help="spec files (api-spec/*.yaml)")
    args = ap.parse_args(argv)
    try:
        vendor_dirs = {}
        for item in args.vendor_include:
            name, sep, d = item.partition("=")
            if not sep or not name or not d:
                raise SpecError("lakegen", 0, f"--vendor-include wants SPEC=DIR, not '{item}'")
            vendor_dirs[name] = d
        specset = SpecSet(args.specs)
        if vendor_dirs:
            unknown = set(vendor_dirs) - {s.name for s in specset.specs}
            if unknown:
                raise SpecError("lakegen", 0, f"--vendor-include for unknown spec(s): {', '.join(sorted(unknown))}")
            info = {s.name: vendor_info(s, vendor_dirs[s.name], args.cpp)
                    for s in specset.specs if s.name in vendor_dirs}
            specset = SpecSet(args.specs, vendor=info)
        if args.list:
            print("\n".join(sorted(outputs(specset))))
            return 0
        files, compat_files = render_all(specset, args.base)
    except SpecError as e:
        print(f"lakegen: error: {e}", file=sys.stderr)
        return 1
    except jinja2.TemplateError as e:
        print(f"lakegen: template error: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for name, text in files.items():
        write_if_changed(os.path.join(args.out, name), text)
    if args.compat_dir:
        os.makedirs(args.compat_dir, exist_ok=True)
        for name, text in compat_files.items():
            write_if_changed(os.path.join(args.compat_dir, name), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
