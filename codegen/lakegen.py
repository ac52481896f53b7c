#!/usr/bin/env python3
"""lakegen: generate LAKE's headers, stubs, dispatch table and tests from api-spec/.

Usage: lakegen.py --out DIR [--list] SPEC.yaml [SPEC.yaml ...]

Writes into DIR (only files whose content changed, so builds stay incremental):
  lake_<spec>.h          public API header (kernel and user space)
  lake_conform_<spec>.c  compile-time conformance check against the vendor header
  lake_proto_gen.h       API ids and wire layouts (all specs)
  lake_stubs.c           client stubs (lake.ko and liblake)
  lake_vendor_gen.h      lakeD's vendor function tables
  lake_dispatch.c        lakeD's dispatch table
  lake_fake.c/.h         the recording test double of the vendor libraries (tests only)
  test_roundtrip.c       a libcheck round-trip test of every remoted function
  lake_test_image.ptx    the tests' module image as a file (cuModuleLoad's tests)

A problem in a spec is reported as 'file:line: problem' with exit status 1.
"""

import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import jinja2
    from lakespec import SpecError, SpecSet, size_c
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


def _size_params(f):
    """Parameters that size a buffer or a device range a call touches: tests
    keep them small (the device ranges tests make are bigger)."""
    names = set()

    def walk(node):
        if node[0] == "param":
            names.add(node[1].name)
        for child in node[1:]:
            if isinstance(child, tuple):
                walk(child)
    for p in f.buffers:
        walk(p.size_ast)
    for p in f.ranges:
        walk(p.extent_ast)
    return names


def test_value(f, p):
    """A deterministic, distinctive C literal for input parameter p of f."""
    if p.name in _size_params(f):
        return "24"
    if p.lifetime in ("retains", "releases"):
        return "7"      # the same value for the call that takes a reference and the one that drops it
    seed = (f.api_id or 0) * 64 + p.index * 4 + 1
    if p.extent_ast is not None:
        return f"{seed * 65536}ULL"    # device ranges of different parameters do not overlap
    wire = p.type.wire
    if wire == "float":
        return f"{seed}.5f"
    if wire == "double":
        return f"{seed}.25"
    if wire in ("__u8", "char"):
        return str(seed % 100)
    if wire in ("__s16", "__u16"):
        return str(seed % 30000)
    return str(seed * 3 + 1)


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


def find_creators(specset):
    """For each handle or tracked type, the remoted function tests call to
    obtain one (its output), ordered so that a creator's own handle inputs
    come first.  Returns [(type, function, out param)]."""
    remoted = [f for s in specset.specs for f in s.functions if f.remoted]
    wanted = [t for s in specset.specs for t in s.types if t.kind == "handle" or t.tracked]
    chosen, order = {}, []

    def needs(f):
        return {p.type.name for p in f.params
                if p.type is not None and p.dir == "in"
                and (p.type.kind == "handle" or p.lifetime == "destroys"
                     or p.extent_ast is not None)}

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
        if p.type is not None and p.type.kind == "scalar" and p.type.tracked:
            if p.dir == "out" and p.lifetime == "creates":
                roles["dev_alloc"] = p
            elif p.dir == "in" and p.lifetime == "destroys":
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
    if "dev_alloc" in roles or "dev_free" in roles:
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
    env.filters.update(cdecl=cdecl, c_comment=c_comment, c_string=c_string, unique_values=unique_values,
                       size_c=size_c, to_wire=to_wire, from_wire=from_wire,
                       vendor_arg=vendor_arg, read_once=read_once, c_literal=c_literal)
    env.globals.update(test_value=test_value, test_real=test_real, fake_out_bits=fake_out_bits,
                       fake_roles=fake_roles, result_value=result_value,
                       expected_out=expected_out, param_doc=param_doc, test_string=test_string)
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
                       ("lake_test_image.ptx", "lake_test_image.ptx.j2")):
        out[name] = (tmpl, {})
    return out


def render_all(specset, rel_base):
    for s in specset.specs:
        s.rel = os.path.relpath(s.path, rel_base) if rel_base else s.path
    remoted = [f for s in specset.specs for f in s.functions if f.remoted]
    tracked = [t for s in specset.specs for t in s.types
               if t.kind == "handle" or t.tracked]
    wire_structs = [t for s in specset.specs for t in s.types if t.kind == "struct"]
    creators, creator_of = find_creators(specset)

    def expected_real(p):
        """What the fake receives for input p when a test passes a created one."""
        f, cp = creator_of[p.type.name]
        return f"lake_fake_out({f.api_id}, {cp.index})"

    def needs_creator(p):
        return p.type is not None and p.dir == "in" and \
            (p.type.kind == "handle" or p.lifetime == "destroys" or p.extent_ast is not None)

    def is_range(p):
        """A device address (a tracked scalar): the test double's allocator
        chooses it, so tests check that it is one, not what it is."""
        return p.type is not None and p.type.kind == "scalar" and p.type.tracked

    # For each type of counted reference, the function that takes one (tests
    # take a reference before they drop it).
    retainers = {}
    for sp in specset.specs:
        for f in sp.functions:
            for p in f.params:
                if p.lifetime == "retains" and f.remoted:
                    retainers.setdefault(p.type.name, f)

    # Counted references: (type name, the function that drops one).
    ref_types = [(tname, f) for sp in specset.specs for tname, f in sp.releasers.items()]
    learners = [f for f in remoted if f.learns]
    test_kernel = test_string(learners[0], learners[0].learns.name_param) if learners else "lake_test_kernel"
    test_ptx = TEST_PTX.format(kernel=test_kernel)
    common = dict(specs=specset.specs, remoted=remoted, tracked_types=tracked, ref_types=ref_types,
                  test_kernel=test_kernel, test_ptx=test_ptx,
                  creators=creators, creator_of=creator_of, expected_real=expected_real,
                  needs_creator=needs_creator, is_range=is_range, retainers=retainers,
                  wire_structs=wire_structs, hash=specset.hash, max_api=specset.max_api,
                  loop_spec_index={s.name: i for i, s in enumerate(specset.specs)})
    env = make_env()
    result = {}
    for name, (tmpl, extra) in outputs(specset).items():
        ctx = dict(common)
        ctx.update(extra)
        result[name] = env.get_template(tmpl).render(**ctx)
    return result


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
    ap.add_argument("specs", nargs="+", help="spec files (api-spec/*.yaml)")
    args = ap.parse_args(argv)
    try:
        specset = SpecSet(args.specs)
        if args.list:
            print("\n".join(sorted(outputs(specset))))
            return 0
        files = render_all(specset, args.base)
    except SpecError as e:
        print(f"lakegen: error: {e}", file=sys.stderr)
        return 1
    except jinja2.TemplateError as e:
        print(f"lakegen: template error: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for name, text in files.items():
        write_if_changed(os.path.join(args.out, name), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
