"""Loading and checking LAKE API specs (api-spec/*.yaml).

The loader keeps the line of every mapping so that any problem is reported as
``file:line: problem`` (SpecError), never as a Python traceback.  The checked
result is a small model (Spec, CType, Member, Function, Param) that the
templates read.  docs/spec-format.md describes the format.
"""

import ast
import hashlib
import json
import os
import re

import yaml


class SpecError(Exception):
    """A problem in a spec file, with the place it was found."""

    def __init__(self, path, line, msg):
        super().__init__(f"{path}:{line}: {msg}")
        self.path, self.line, self.msg = path, line, msg


class _LineDict(dict):
    line = 0


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings remember their first line (1-based)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_line_map(loader, node):
    mapping = _LineDict()
    mapping.line = node.start_mark.line + 1
    yield mapping
    mapping.update(loader.construct_mapping(node, deep=True))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_line_map)


# Built-in scalar C types and how they cross the wire (fixed width, x86-64 ABI).
BUILTIN_SCALARS = {
    "char": "char",
    "signed char": "__s8",
    "unsigned char": "__u8",
    "short": "__s16",
    "unsigned short": "__u16",
    "int": "__s32",
    "unsigned int": "__u32",
    "long": "__s64",
    "unsigned long": "__u64",
    "long long": "__s64",
    "unsigned long long": "__u64",
    "size_t": "__u64",
    "int8_t": "__s8",
    "uint8_t": "__u8",
    "int16_t": "__s16",
    "uint16_t": "__u16",
    "int32_t": "__s32",
    "uint32_t": "__u32",
    "int64_t": "__s64",
    "uint64_t": "__u64",
    "float": "float",
    "double": "double",
}
_WIRE_SIZE = {"char": 1, "__s8": 1, "__u8": 1, "__s16": 2, "__u16": 2, "__s32": 4, "__u32": 4,
              "__s64": 8, "__u64": 8, "float": 4, "double": 8}

TYPE_KINDS = ("scalar", "handle", "enum", "struct", "union", "opaque", "callback")
PARAM_KINDS = ("buffer", "string", "kernel-params", "null-only", "local-out", "file",
               "launch-extra", "handles", "attribute", "string-out", "raw")
# Parameter kinds the extension templates (lake_ext_*.j2) marshal.
EXT_KINDS = ("handles", "attribute", "string-out")
MODES = ("sync", "async", "local", "daemon")
LOCAL_IMPLS = ("error-name", "error-string")
# Local functions generated into lake_compat.c (not into the stubs).
COMPAT_IMPLS = ("proc-address", "host-alloc", "alloc-host", "free-host", "host-get-flags")
# What each compat impl's parameters must be: (description, C types).
COMPAT_SHAPES = {
    "proc-address": ("(const char *symbol, void **pfn, int version, cuuint64_t flags, "
                     "CUdriverProcAddressQueryResult *status)",
                     ("const char *", "void **", "int", "cuuint64_t", "CUdriverProcAddressQueryResult *")),
    "host-alloc": ("(void **pp, size_t bytesize, unsigned int flags)", ("void **", "size_t", "unsigned int")),
    "alloc-host": ("(void **pp, size_t bytesize)", ("void **", "size_t")),
    "free-host": ("(void *p)", ("void *",)),
    "host-get-flags": ("(unsigned int *flags, void *p)", ("unsigned int *", "void *")),
}
ERROR_KEYS = ("unavailable", "timeout", "interrupted", "invalid", "unsupported",
              "no-memory", "protocol", "invalid-handle", "no-vendor")
# Optional error kinds, and the kind each falls back to when a spec omits it
# (None: needed only by specs that use what they answer: a `file` parameter
# needs no-file, a count output clamped to the caller's capacity too-small).
OPTIONAL_ERROR_KEYS = {"not-held": "invalid", "no-file": None, "too-small": None}
DAEMON_HELPERS = ("stream-sync", "param-info", "set-current", "push-current", "pop-current",
                  "unmap")
LIFETIMES = ("creates", "destroys", "retains", "releases", "reserves", "unreserves")
SIZE_FUNCTIONS = {"module_image_size": "lake_module_image_size"}
# Size functions over scalars: name -> (C function, number of arguments).
SIZE_CALLS = {"extent2d": ("lake_sz_extent2d", 5), "extent3d": ("lake_sz_extent3d", 8)}
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names a parameter or member cannot have: C keywords, and macros of the
# kernel or libc that generated code would expand by mistake.
RESERVED_NAMES = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool", "true", "false", "asm",
    "current", "jiffies", "errno", "NULL", "min", "max",
}

MAX_KPARAMS = 128     # must match LAKE_MAX_KPARAMS in <linux/lake.h>
MAX_HANDLES = 1024    # LAKE_MAX_HANDLES: elements of a handle array per call
MAX_CHECKED = 64      # LAKE_MAX_CHECKED: elements of a checked (validated) buffer
ATTR_BYTES = 64       # LAKE_ATTR_BYTES: the largest attribute value
ARRAY_LEAVES = 16     # arrays longer than this contribute their first and last element


def _one_per_type(s, ender, starter, what, shape_ok, shape_msg, missing):
    """{type name: the one function of spec @s whose parameter has 'lifetime:
    @ender'} (lakeD calls it for what a departed client leaves); a second one
    for a type, one whose parameters fail @shape_ok, and a 'lifetime:
    @starter' with no ender are errors (@what, @missing: "{}" is the type)."""
    enders = {}
    for f in s.functions:
        for p in f.params:
            if p.lifetime == ender:
                if p.type.name in enders:
                    p.fail(f"a second function {what.format(p.type.name)} "
                           f"(first: {enders[p.type.name].name})")
                if not shape_ok(f, p):
                    p.fail(shape_msg)
                enders[p.type.name] = f
    for f in s.functions:
        for p in f.params:
            if p.lifetime == starter and p.type.name not in enders:
                p.fail(missing.format(p.type.name))
    return enders


def _fail(path, node, msg):
    raise SpecError(path, getattr(node, "line", 0), msg)


def _need(path, node, key, kind=str):
    if key not in node:
        _fail(path, node, f"missing field '{key}'")
    val = node[key]
    if not isinstance(val, kind) or (kind is str and not val.strip()):
        _fail(path, node, f"field '{key}' must be a non-empty "
                          f"{'string' if kind is str else kind.__name__}")
    return val


def _only(path, node, allowed, what):
    for key in node:
        if key not in allowed:
            _fail(path, node, f"unknown field '{key}' in {what}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class CType:
    """A type named in a spec (or a built-in scalar)."""

    def __init__(self, name, kind, spec=None, doc="", c_type=None, tag=None,
                 values=(), fields=(), destroy=None, line=0):
        self.name, self.kind, self.spec, self.doc = name, kind, spec, doc
        self.c_type, self.tag, self.values, self.fields = c_type, tag, values, fields
        self.destroy, self.line = destroy, line
        self.destroy_fn = None          # resolved Function
        self.members = []               # struct/union: [Member]
        self.aliases = []               # other typedef names of the type
        self.returns, self.args = None, None   # callback
        self.tracks = "range"           # a tracked scalar: a device range, or an opaque value
        self.scope = "context"          # a created one dies with the context it was made in
        self.node = None

    @property
    def wire(self):
        """The wire (fixed-width) C type of a value of this type."""
        if self.kind == "scalar":
            return BUILTIN_SCALARS[self.c_type]
        if self.kind == "enum":
            return "__s32"
        if self.kind == "handle":
            return "__u64"
        if self.kind == "struct":
            return f"struct lake_wire_{self.name}"
        if self.kind == "union":
            return f"union lake_wire_{self.name}"
        raise AssertionError(self.kind)

    @property
    def plain(self):
        """The type lakeD uses to call the vendor (ABI-identical, no vendor header)."""
        if self.kind == "scalar":
            return self.c_type
        if self.kind == "enum":
            return "int"
        if self.kind == "handle":
            return "void *"
        if self.kind in ("struct", "union"):
            return self.wire
        raise AssertionError(self.kind)

    @property
    def tracked(self):
        return self.destroy is not None

    @property
    def is_range(self):
        """A tracked scalar that is a device address: values name ranges of
        bytes, which lakeD checks every address a client passes against."""
        return self.kind == "scalar" and self.tracked and self.tracks == "range"

    @property
    def is_value(self):
        """A tracked scalar that is an opaque number (an allocation handle):
        lakeD keeps the values a client holds, never as address ranges."""
        return self.kind == "scalar" and self.tracked and self.tracks == "value"

    @property
    def is_record(self):
        return self.kind in ("struct", "union")

    # -- struct and union views (computed by SpecSet once types resolve) --
    @property
    def handle_leaves(self):
        """[(C path, handle CType)] of the handles inside (not inside unions)."""
        return _handle_leaves(self.members, "")

    @property
    def ptr_members(self):
        """Top-level members that are host pointers (buffers, null-only)."""
        return [m for m in self.members if m.kind in ("buffer", "null-only")]

    @property
    def buffer_members(self):
        return [m for m in self.members if m.kind == "buffer"]

    @property
    def range_members(self):
        """Top-level members that are device addresses (with their extents)."""
        return [m for m in self.members if m.type is not None and m.type.is_range]

    @property
    def accepting_members(self):
        """Top-level enum members with a list of accepted values."""
        return [m for m in self.members if m.accepted]

    @property
    def selectors(self):
        """[(union path, selector path, [(value, name)])] at any depth."""
        return _selectors(self.members, "")

    @property
    def is_plain(self):
        """Crosses as bytes, unchecked: no handles, pointers, device addresses,
        selected unions or accepted-value lists."""
        return not (self.handle_leaves or self.ptr_members or self.selectors
                    or self.range_members or self.accepting_members
                    or _has_unsafe_union(self.members))

    @property
    def needs_check(self):
        """Its values must be checked (selected unions, accepted values)
        before lakeD uses them."""
        return bool(self.selectors or self.accepting_members)

    @property
    def size(self):
        return _members_size(self.members, self.kind)


class Member:
    """A member of a struct or union type (or of an anonymous one inside)."""

    def __init__(self, owner, node, path):
        self.owner, self.node, self.path, self.line = owner, node, path, node.line
        self.name = _need(path, node, "name")
        if not IDENT.match(self.name) or self.name in RESERVED_NAMES:
            self.fail(f"member name '{self.name}' is not a C identifier, or is a C keyword "
                      f"or kernel/libc macro")
        _only(path, node, ("name", "type", "count", "doc", "kind", "dir", "size", "elem",
                           "c-type", "when", "selector", "allow", "struct", "union", "extent"),
              f"member '{self.name}' of '{owner}'")
        self.doc = node.get("doc", "")
        self.kind = node.get("kind")
        self.type_name = node.get("type")
        self.count = node.get("count")
        self.dir = node.get("dir", "in")
        self.size_text = node.get("size")
        self.elem_name = node.get("elem")
        self.c_type_override = node.get("c-type")
        self.when_node = node.get("when")
        self.selector_name = node.get("selector")
        self.allow_node = node.get("allow")
        self.type = None
        self.elem = None
        self.members = []        # inline anonymous struct/union
        self.inline = None       # "struct" | "union"
        self.size_ast = None
        self.when = None         # (Member, value, value name)
        self.extent_text = node.get("extent")
        self.extent_ast = None   # a device-address member: the bytes a call touches from it
        self.accepted = []       # an enum member with 'allow': [(value, name)] accepted
        self.selector = None     # sibling Member
        self.allow = []          # [(value, value name, union Member)]
        for key in ("struct", "union"):
            if key in node:
                if self.kind is not None or self.type_name is not None:
                    self.fail(f"an anonymous {key} member takes no 'kind' or 'type'")
                lst = node[key]
                if not isinstance(lst, list) or not lst:
                    self.fail(f"'{key}' must be a non-empty list of members")
                self.inline = key
                self.members = [Member(f"{owner}.{self.name}", m, path) if isinstance(m, dict)
                                else self.fail("each member must be a mapping") for m in lst]
        if self.inline is None and self.kind is None and self.type_name is None:
            self.fail("needs a 'type', a 'kind', or 'struct'/'union' members")
        if self.kind is not None and self.kind not in ("buffer", "null-only", "address"):
            self.fail(f"unknown member kind '{self.kind}' (buffer, null-only or address)")
        if self.count is not None and (not _is_int(self.count) or not 1 <= self.count <= 4096):
            if self.kind != "buffer":
                self.fail("'count' of a member array must be an integer between 1 and 4096")

    def fail(self, msg):
        _fail(self.path, self.node, f"{self.owner}: member '{self.name}': {msg}")

    @property
    def c_type(self):
        """The member's C type in the public header (pointer members)."""
        if self.c_type_override:
            return self.c_type_override
        if self.kind == "buffer":
            base = self.elem.name if self.elem else "void"
            return f"const {base} *" if self.dir == "in" and not self.elem else f"{base} *"
        if self.kind == "address":
            return "void *"
        raise AssertionError(self.kind)


def _leaf_paths(name, count):
    if not count:
        return [name]
    if count <= ARRAY_LEAVES:
        return [f"{name}[{i}]" for i in range(count)]
    return [f"{name}[0]", f"{name}[{count - 1}]"]


def _value_leaves(members, prefix, kind):
    """Scalar and enum leaves {name, type, wire} a test can set and compare;
    of a union, only its first member's."""
    out = []
    for m in members[:1] if kind == "union" else members:
        if m.kind is not None:
            continue
        base = prefix + m.name
        if m.inline or (m.type and m.type.is_record):
            sub = m.members if m.inline else m.type.members
            sk = m.inline or m.type.kind
            for p in _leaf_paths(base, m.count):
                out += _value_leaves(sub, p + ".", sk)
        elif m.type.kind in ("scalar", "enum"):
            for p in _leaf_paths(base, m.count):
                out.append({"name": p, "type": m.type.name, "wire": m.type.wire,
                            "ctype": m.type, "member": m, "range": m.type.is_range})
    return out


def _handle_leaves(members, prefix):
    out = []
    for m in members:
        if m.kind is not None:
            continue
        base = prefix + m.name
        if m.inline == "struct" or (m.type and m.type.kind == "struct"):
            sub = m.members if m.inline else m.type.members
            for p in _leaf_paths(base, m.count):
                out += _handle_leaves(sub, p + ".")
        elif m.type and m.type.kind == "handle":
            out += [(p, m.type) for p in _leaf_paths(base, m.count)]
    return out


def _selectors(members, prefix):
    out = []
    for m in members:
        base = prefix + m.name
        if m.selector is not None:
            out.append((base, prefix + m.selector.name, [(v, n) for v, n, _ in m.allow]))
        elif m.inline == "struct" or (m.type and m.type.kind == "struct"):
            if not m.count:
                out += _selectors(m.members if m.inline else m.type.members, base + ".")
    return out


def _has_unsafe_union(members):
    for m in members:
        if m.selector is not None:
            continue
        sub = m.members if m.inline else (m.type.members if m.type and m.type.is_record else [])
        kind = m.inline or (m.type.kind if m.type else None)
        if kind == "union" and not _members_plain(sub):
            return True
        if sub and _has_unsafe_union(sub):
            return True
    return False


def _members_plain(members):
    for m in members:
        if m.kind == "address":
            continue
        if m.kind is not None:
            return False
        if m.inline:
            if not _members_plain(m.members):
                return False
        elif m.type.kind == "handle" or m.type.is_range or m.accepted:
            return False
        elif m.type.is_record and not _members_plain(m.type.members):
            return False
    return True


def _align_of(m):
    if m.kind is not None:
        return 8
    if m.inline:
        return max(_align_of(x) for x in m.members)
    t = m.type
    if t.is_record:
        return max(_align_of(x) for x in t.members)
    return 8 if t.kind == "handle" else (4 if t.kind == "enum" else _WIRE_SIZE[t.wire])


def _member_size(m):
    if m.kind is not None:
        return 8
    if m.inline:
        one = _members_size(m.members, m.inline)
    elif m.type.is_record:
        one = m.type.size
    else:
        one = 8 if m.type.kind == "handle" else (4 if m.type.kind == "enum" else _WIRE_SIZE[m.type.wire])
    return one * (m.count or 1)


def _members_size(members, kind):
    """The x86-64 size of a struct/union of @members (for checks only: the
    conformance check proves it against the vendor header)."""
    off, align = 0, 1
    for m in members:
        a = _align_of(m)
        align = max(align, a)
        sz = _member_size(m)
        if kind == "union":
            off = max(off, sz)
        else:
            off = (off + a - 1) // a * a + sz
    return (off + align - 1) // align * align


class Param:
    def __init__(self, fn, node, path):
        self.fn, self.line = fn, node.line
        self.name = _need(path, node, "name")
        if not IDENT.match(self.name):
            _fail(path, node, f"parameter name '{self.name}' is not a C identifier")
        if self.name in RESERVED_NAMES:
            _fail(path, node, f"parameter name '{self.name}' is a C keyword or a kernel/libc "
                              f"macro (rename it: names do not matter to the ABI)")
        _only(path, node, ("name", "type", "kind", "dir", "doc", "size", "count",
                           "elem", "max", "function", "c-type", "lifetime",
                           "parent", "learn-params", "extent", "untracked", "owned", "kernels-from",
                           "nul-terminated", "by", "allow", "selector", "types", "key", "fallback"),
              f"parameter '{self.name}'")
        self.doc = node.get("doc", "")
        self.kind = node.get("kind")
        self.type_name = node.get("type")
        self.dir = node.get("dir", "in")
        self.size, self.count = node.get("size"), node.get("count")
        self.elem_name = node.get("elem")
        self.max = node.get("max")
        self.function = node.get("function")
        self.c_type_override = node.get("c-type")
        self.lifetime = node.get("lifetime")
        self.parent = node.get("parent")
        self.learn_params = node.get("learn-params")    # the string param naming the kernel
        self.kernels_from = node.get("kernels-from")    # the image param of a module load
        self.nul_terminated = node.get("nul-terminated", False)
        self.from_file = False      # a `file` parameter: a buffer the stub reads from a path
        if self.kind == "file":
            self.kind, self.from_file = "buffer", True
        self.name_param = None      # resolved learn-params
        self.image_param = None     # resolved kernels-from
        self.capacity_of = None     # an inout count: the out buffer it sizes
        self.by = node.get("by")
        self.allow_node = node.get("allow")
        self.selector_name = node.get("selector")
        self.types_node = node.get("types")
        self.key_name = node.get("key")
        self.fallback = node.get("fallback")
        self.extent = node.get("extent")
        self.extent_ast = None  # size tree of the device range this value names
        self.sizes_extent = False   # an output another output's extent is computed from
        self.untracked = node.get("untracked", False)   # an output address that is no range
        self.owned = node.get("owned", False)   # an input handle the client must have created
        self.node, self.path = node, path
        self.type = None       # CType for typed params; the handle type of 'handles'
        self.elem = None       # CType for typed buffers
        self.size_c = None     # C expression (client side)
        self.index = 0         # position
        self.out_bit = None    # bit in hdr.present for outputs
        self.allow = []        # buffer of enums: [(value, name)] accepted
        self.selector = None   # attribute: the Param choosing the type
        self.attr_types = []   # attribute: [(value, value name, CType)]
        self.key = None        # string-out: the enum Param the text is cached by

    def fail(self, msg):
        _fail(self.path, self.node, f"{self.fn.name}: parameter '{self.name}': {msg}")

    # -- derived views used by templates --
    @property
    def is_out(self):
        return self.kind is None and self.dir in ("out", "inout")

    @property
    def is_inout(self):
        return self.kind is None and self.dir == "inout"

    @property
    def is_in_value(self):
        return self.kind is None and self.dir == "in" and self.by is None

    @property
    def is_handle(self):
        return self.kind is None and self.type is not None and self.type.kind == "handle"

    @property
    def counts_handles(self):
        """This input counts the elements of an input handle array."""
        return self.kind is None and self.dir == "in" and any(
            q.kind == "handles" and q.dir == "in" and q.size_ast[1] == ("param", self)
            for q in self.fn.params)

    @property
    def ext(self):
        """Marshalled by the extension templates (lake_ext_*.j2)."""
        return self.kind in EXT_KINDS or self.by is not None

    @property
    def checked(self):
        """A buffer whose elements lakeD validates on a private copy."""
        return self.kind == "buffer" and (bool(self.allow) or
                                          (self.elem is not None and self.elem.needs_check))

    @property
    def on_wire(self):
        return self.kind in ("buffer", "string", "kernel-params", "launch-extra") or \
            self.kind is None or self.ext

    @property
    def c_type(self):
        """The parameter's C type in the public prototype."""
        if self.kind in ("null-only", "local-out", "raw"):
            return self.c_type_override
        if self.kind == "string" or self.from_file:
            return "const char *"
        if self.kind == "string-out":
            return "const char **"
        if self.kind in ("kernel-params", "launch-extra"):
            return "void **"
        if self.kind == "attribute":
            return self.c_type_override or ("void *" if self.dir == "out" else "const void *")
        if self.kind == "handles":
            return f"const {self.type.name} *" if self.dir == "in" else f"{self.type.name} *"
        if self.kind == "buffer":
            if self.c_type_override:
                return self.c_type_override
            base = self.elem.name if self.elem else "void"
            return f"const {base} *" if self.dir == "in" else f"{base} *"
        base = self.type.name
        if self.by == "const-pointer":
            return f"const {base} *"
        return f"{base} *" if self.dir in ("out", "inout") or self.by else base

    @property
    def plain_c_type(self):
        """The parameter's type in lakeD's vendor table (no vendor header needed)."""
        if self.kind in ("null-only", "local-out", "raw", "attribute"):
            return "void *"
        if self.kind == "string":
            return "const char *"
        if self.kind == "string-out":
            return "const char **"
        if self.kind in ("kernel-params", "launch-extra", "handles"):
            return "void **"
        if self.kind == "buffer":
            if self.c_type_override:
                return "const void *" if self.dir == "in" else "void *"
            base = self.elem.plain if self.elem else "void"
            return f"const {base} *" if self.dir == "in" else f"{base} *"
        base = self.type.plain
        if self.by == "const-pointer":
            return f"const {base} *"
        if self.dir in ("out", "inout") or self.by:
            return base + ("*" if base.endswith("*") else " *")
        return base

    @property
    def wire_type(self):
        if self.kind in ("buffer", "string", "kernel-params", "launch-extra", "handles"):
            return "struct lake_buf_ref"
        return self.type.wire


class Function:
    def __init__(self, spec, node, path):
        self.spec, self.line, self.node, self.path = spec, node.line, node, path
        self.name = _need(path, node, "name")
        if not IDENT.match(self.name):
            _fail(path, node, f"function name '{self.name}' is not a C identifier")
        _only(path, node, ("name", "vendor", "doc", "mode", "stream", "impl",
                           "params", "refused", "since", "context"), f"function '{self.name}'")
        self.doc = _need(path, node, "doc")
        self.vendor_given = node.get("vendor")
        self.vendor = self.vendor_given or self.name      # what lakeD calls
        self.public_symbol = None   # what the vendor header names the public name (below)
        self.mode = node.get("mode", "sync")
        self.stream = node.get("stream")
        self.impl = node.get("impl")
        self.refused = node.get("refused")
        self.since = node.get("since")
        # 'context: own': it changes the current context's settings, which
        # only a context the client made may have changed (lakeD's default
        # context is shared by every client of the process).
        self.context = node.get("context")
        if self.context not in (None, "own"):
            _fail(path, node, f"{self.name}: 'context' is 'own' (the call needs a current context "
                              f"the client created)")
        self.context_op = None  # "push"/"pop": lakeD keeps the calling thread's context stack
        self.ptds = False       # the vendor has a per-thread-default-stream variant
        self.procs = [(self.name, self.since or 0, 0, 0)]   # what cuGetProcAddress answers
        self.proc_checks = []   # (name, version) of typedefs the conformance check compares
        if self.refused is not None and (not isinstance(self.refused, str) or not self.refused.strip()):
            _fail(path, node, f"{self.name}: 'refused' must say why (a non-empty string)")
        if self.since is not None and not (_is_int(self.since) and self.since > 0):
            _fail(path, node, f"{self.name}: 'since' must be a positive vendor version number")
        raw = node.get("params", [])
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            _fail(path, node, f"{self.name}: 'params' must be a list")
        self.params = []
        for i, p in enumerate(raw):
            if not isinstance(p, dict):
                _fail(path, node, f"{self.name}: parameter {i + 1} must be a mapping")
            self.params.append(Param(self, p, path))
        self.api_id = 0
        self.learns = None      # the out CUfunction param with learn-params
        if self.context is not None and self.refused is not None:
            _fail(path, node, f"{self.name}: a refused function takes no 'context'")

    def fail(self, msg):
        _fail(self.path, self.node, f"{self.name}: {msg}")

    def param(self, name):
        for p in self.params:
            if p.name == name:
                return p
        return None

    @property
    def compat(self):
        """Generated into lake_compat.c rather than the stubs: refused functions
        and the local functions that need the client's host (arena, symbols)."""
        return self.refused is not None or (self.mode == "local" and self.impl in COMPAT_IMPLS)

    @property
    def remoted(self):
        return self.mode in ("sync", "async") and not self.compat

    @property
    def is_async(self):
        return self.mode == "async"

    @property
    def outs(self):
        return [p for p in self.params if p.is_out]

    @property
    def ext_params(self):
        return [p for p in self.params if p.ext]

    @property
    def ext_outs(self):
        """Extension parameters with room in the outputs area."""
        return [p for p in self.params if p.kind in ("string-out",)
                or (p.kind == "attribute" and p.dir == "out")]

    @property
    def struct_buffers(self):
        """[(param, member)]: host-pointer members of struct inputs."""
        return [(p, m) for p in self.params if p.by for m in p.type.buffer_members]

    @property
    def handle_arrays(self):
        return [p for p in self.params if p.kind == "handles"]

    @property
    def async_buffers(self):
        """Struct members the vendor may still read or write after an async
        call returns (not checked ones: those lakeD copies)."""
        return [(p, m) for p, m in self.struct_buffers
                if not (m.elem is not None and m.elem.needs_check)]

    @property
    def stageable(self):
        """Some argument travels as a buffer (staged or by arena offset)."""
        return bool(self.buffers or self.handle_arrays or self.struct_buffers)

    @property
    def variants(self):
        """Round-trip tests run once with plain memory and, for buffers, once
        with arena memory."""
        return 2 if self.stageable else 1

    @property
    def checked_buffers(self):
        return [p for p in self.params if p.checked]

    @property
    def produces(self):
        """Does a successful call hand something back or change what the
        client holds: an output value, buffer, handle array, attribute or
        text, a resource created or destroyed, a reference taken or dropped,
        the calling thread's context?  Such a call's own result is never
        replaced by an earlier async call's deferred error."""
        return bool(self.outs) or bool(self.ext_outs) or self.learns is not None or any(
            (p.kind in ("buffer", "handles") and p.dir != "in") or p.lifetime is not None
            for p in self.params) or any(m.dir != "in" for _, m in self.struct_buffers) \
            or self.context_op is not None

    @property
    def ranges(self):
        """Input device addresses with the extent each call touches."""
        return [p for p in self.params if p.dir == "in" and p.extent_ast is not None]

    @property
    def member_ranges(self):
        """[(struct param, member)]: device-address members of struct inputs."""
        return [(p, m) for p in self.params if p.by for m in p.type.range_members]

    @property
    def wire_params(self):
        return [p for p in self.params if p.on_wire]

    @property
    def buffers(self):
        return [p for p in self.params if p.kind == "buffer"]

    @property
    def stream_member(self):
        """(struct param, member) when 'stream' names a struct member (p.m)."""
        if self.stream and "." in self.stream:
            pname, mname = self.stream.split(".", 1)
            p = self.param(pname)
            return p, mname
        return None

    @property
    def reads_file(self):
        return any(p.from_file for p in self.params)

    @property
    def loads_image(self):
        """The output module handle whose kernels the client reads, or None."""
        return next((p for p in self.params if p.image_param is not None), None)

    @property
    def prototype_args(self):
        return ", ".join(f"{p.c_type}{'' if p.c_type.endswith('*') else ' '}{p.name}"
                         for p in self.params) or "void"

    @property
    def plain_args(self):
        return ", ".join(f"{p.plain_c_type}{'' if p.plain_c_type.endswith('*') else ' '}{p.name}"
                         for p in self.params) or "void"

    @property
    def call_args(self):
        return ", ".join(p.name for p in self.params)


class Spec:
    def __init__(self, path):
        self.path = path
        self.rel = path
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise SpecError(path, 0, f"cannot read spec: {e.strerror}") from None
        try:
            root = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (SafeLoader subclass)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            line = mark.line + 1 if mark else 0
            problem = getattr(e, "problem", None) or str(e)
            raise SpecError(path, line, f"YAML error: {problem}") from None
        if not isinstance(root, dict):
            raise SpecError(path, 1, "a spec must be a YAML mapping")
        self.raw = root
        _only(path, root, ("spec", "doc", "vendor", "compat", "result", "daemon", "macros",
                           "types", "functions"), "the spec's top level")
        self.name = _need(path, root, "spec")
        stem = os.path.splitext(os.path.basename(path))[0]
        if self.name != stem:
            _fail(path, root, f"spec name '{self.name}' must match the file name '{stem}'")
        if not IDENT.match(self.name):
            _fail(path, root, f"spec name '{self.name}' is not a C identifier")
        self.doc = _need(path, root, "doc")
        vendor = _need(path, root, "vendor", dict)
        _only(path, vendor, ("header", "library", "defines", "typedefs"), "vendor")
        self.header = _need(path, vendor, "header")
        self.library = _need(path, vendor, "library")
        self.vendor_defines = vendor.get("defines", []) or []
        if not isinstance(self.vendor_defines, list) or \
                not all(isinstance(d, str) and IDENT.match(d) for d in self.vendor_defines):
            _fail(path, vendor, "vendor 'defines' must be a list of macro names")
        self.typedefs_header = vendor.get("typedefs")
        self.vendor_node = vendor
        compat = root.get("compat", {}) or {}
        if not isinstance(compat, dict):
            _fail(path, root, "'compat' must be a mapping")
        _only(path, compat, ("header", "guard"), "compat")
        self.compat_header = compat.get("header", self.header)
        self.compat_guard = compat.get("guard")
        if self.compat_guard is not None and not IDENT.match(str(self.compat_guard)):
            _fail(path, compat, "compat 'guard' must be a macro name")
        result = _need(path, root, "result", dict)
        _only(path, result, ("type", "success", "errors"), "result")
        self.result_name = _need(path, result, "type")
        self.success = _need(path, result, "success")
        errors = _need(path, result, "errors", dict)
        known = ERROR_KEYS + tuple(OPTIONAL_ERROR_KEYS)
        for key in errors:
            if key not in known:
                _fail(path, errors, f"unknown error kind '{key}' (known: {', '.join(known)})")
        for key in ERROR_KEYS:
            _need(path, errors, key)
        for key in OPTIONAL_ERROR_KEYS:
            if key in errors:
                _need(path, errors, key)
        self.errors = {k.replace("-", "_"): errors[k] for k in ERROR_KEYS}
        for key, fallback in OPTIONAL_ERROR_KEYS.items():
            self.errors[key.replace("-", "_")] = errors.get(key, errors[fallback] if fallback else None)
        self.result_node = result
        daemon = root.get("daemon", {}) or {}
        if not isinstance(daemon, dict):
            _fail(path, root, "'daemon' must be a mapping")
        for key in daemon:
            if key not in DAEMON_HELPERS:
                _fail(path, daemon, f"unknown daemon helper '{key}' (known: {', '.join(DAEMON_HELPERS)})")
        self.daemon_node = daemon
        self.daemon = {k.replace("-", "_"): daemon.get(k) for k in DAEMON_HELPERS}
        self.macros = []
        for node in root.get("macros", []) or []:
            self.macros.append(self._load_macro(node))
        self.types = []
        self.all_functions = []
        for node in _need(path, root, "types", list):
            self.types.append(self._load_type(node))
        for node in _need(path, root, "functions", list):
            if not isinstance(node, dict):
                _fail(path, root, "each function must be a mapping")
            self.all_functions.append(Function(self, node, path))
        # The stubs, dispatch and tests see the functions that go through the
        # protocol (and the error-text locals); lake_compat.c the others.
        self.functions = [f for f in self.all_functions if not f.compat]
        self.compat_functions = [f for f in self.all_functions if f.compat]

    @property
    def proc_table(self):
        """cuGetProcAddress's table: [(name, function, since, until, first)] by name."""
        rows = [(name, f, since, until, first) for f in self.all_functions if f.mode != "daemon"
                for name, since, until, first in f.procs]
        return sorted(rows, key=lambda r: r[0])

    def _load_macro(self, node):
        path = self.path
        if not isinstance(node, dict):
            _fail(path, self.raw, "each macro must be a mapping")
        _only(path, node, ("name", "value", "doc"), "a macro")
        name = _need(path, node, "name")
        if not IDENT.match(name):
            _fail(path, node, f"macro name '{name}' is not a C identifier")
        if "value" not in node or not isinstance(node["value"], (int, str)) or isinstance(node["value"], bool):
            _fail(path, node, f"macro '{name}' needs a 'value' (an integer or a C expression)")
        value = node["value"]
        return {"name": name, "value": str(value) if _is_int(value) else value,
                "int": _is_int(value), "doc": str(node.get("doc", "")), "line": node.line,
                "pointer": isinstance(value, str) and "void" in value}

    @property
    def launch_extra(self):
        """Does a function take an explicit launch parameter buffer?"""
        return any(p.kind == "launch-extra" for f in self.functions for p in f.params)

    def _load_type(self, node):
        path = self.path
        if not isinstance(node, dict):
            _fail(path, self.raw, "each type must be a mapping")
        name = _need(path, node, "name")
        if not IDENT.match(name):
            _fail(path, node, f"type name '{name}' is not a C identifier")
        kind = _need(path, node, "kind")
        if kind not in TYPE_KINDS:
            _fail(path, node, f"type '{name}': unknown kind '{kind}' "
                              f"(known: {', '.join(TYPE_KINDS)})")
        _only(path, node, ("name", "kind", "doc", "c-type", "tag", "values", "fields",
                           "destroy", "returns", "args", "aliases", "tracks", "scope"), f"type '{name}'")
        doc = _need(path, node, "doc")
        t = CType(name, kind, spec=self, doc=doc, destroy=node.get("destroy"), line=node.line)
        t.node = node
        t.tracks = node.get("tracks", "range")
        if t.tracks not in ("range", "value") or ("tracks" in node and (kind != "scalar" or not t.tracked)):
            _fail(path, node, f"type '{name}': 'tracks' (range or value) applies to a scalar "
                              f"with 'destroy'")
        t.scope = node.get("scope", "context")
        if t.scope not in ("context", "process") or ("scope" in node and not t.tracked):
            _fail(path, node, f"type '{name}': 'scope' (context or process) applies to a type "
                              f"with 'destroy'")
        aliases = node.get("aliases", []) or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) and IDENT.match(a) for a in aliases):
            _fail(path, node, f"type '{name}': 'aliases' must be a list of type names")
        t.aliases = aliases
        if kind == "scalar":
            t.c_type = _need(path, node, "c-type")
            if t.c_type not in BUILTIN_SCALARS:
                _fail(path, node, f"type '{name}': unknown c-type '{t.c_type}'")
        elif kind == "callback":
            t.returns = _need(path, node, "returns")
            t.args = _need(path, node, "args")
        else:
            t.tag = _need(path, node, "tag")
        if kind == "enum":
            vals = []
            for v in _need(path, node, "values", list):
                if not isinstance(v, dict):
                    _fail(path, node, f"enum '{name}': each value must be a mapping")
                _only(path, v, ("name", "value", "doc"), f"a value of enum '{name}'")
                vname = _need(path, v, "name")
                if "value" not in v or not _is_int(v["value"]):
                    _fail(path, v, f"enum '{name}': value '{vname}' needs an integer 'value'")
                if any(x["name"] == vname for x in vals):
                    _fail(path, v, f"enum '{name}': duplicate value '{vname}'")
                vals.append({"name": vname, "value": v["value"],
                             "doc": str(v.get("doc", "")), "line": v.line})
            t.values = vals
        if kind in ("struct", "union"):
            members = []
            for fnode in _need(path, node, "fields", list):
                if not isinstance(fnode, dict):
                    _fail(path, node, f"{kind} '{name}': each field must be a mapping")
                m = Member(name, fnode, path)
                if any(x.name == m.name for x in members):
                    m.fail("duplicate member")
                members.append(m)
            t.members = members
        if kind in ("enum", "struct", "union", "opaque", "callback") and t.destroy:
            _fail(path, node, f"type '{name}': only scalars and handles can have 'destroy'")
        return t

    def enum_value(self, t, name):
        for v in t.values:
            if v["name"] == name:
                return v["value"]
        return None


class VendorInfo:
    """What the vendor header says about a spec's functions (see lakegen's
    --vendor-include): the symbol each public name is #defined to, the
    functions it declares, its per-thread-default-stream variants and, from
    the typedefs header (cudaTypedefs.h), the versions of each ABI."""

    def __init__(self, header, symbols, declared, ptds, versions, visible=()):
        self.header = header
        self.visible = set(visible)     # (name, version) a program can see
        self.symbols = symbols          # name -> vendor symbol (after #define)
        self.declared = declared        # set of declared function names
        self.ptds = ptds                # set of names with _ptds/_ptsz variants
        self.versions = versions        # name -> sorted [versions] (PFN_name_vNNNN)


class SpecSet:
    """All the specs of one build, checked together (API ids are global)."""

    def __init__(self, paths, vendor=None):
        if not paths:
            raise SpecError("lakegen", 0, "no spec files given")
        self.vendor = vendor or {}
        self.specs = [Spec(p) for p in paths]
        names = [s.name for s in self.specs]
        for s in self.specs:
            if names.count(s.name) > 1:
                raise SpecError(s.path, 1, f"spec '{s.name}' is given twice")
        self.types = {}
        for b, wire in BUILTIN_SCALARS.items():
            self.types[b] = CType(b, "scalar", c_type=b)
        for s in self.specs:
            for t in s.types:
                if t.name in self.types:
                    _fail(s.path, t, f"duplicate type '{t.name}'")
                self.types[t.name] = t
        for s in self.specs:
            for t in s.types:
                if t.is_record:
                    self._resolve_members(s, t.name, t.members, t.kind)
            for t in s.types:
                if t.is_record:
                    self._check_record(s, t)
                    t.fields = _value_leaves(t.members, "", t.kind)
            s.ordered_types = self._order_types(s)
        seen = {}
        for s in self.specs:
            for f in s.all_functions:
                if f.name in seen:
                    f.fail(f"duplicate function (first defined at {seen[f.name]})")
                seen[f.name] = f"{s.path}:{f.line}"
        publics = {f.name: f for s in self.specs for f in s.all_functions}
        for s in self.specs:
            for f in s.all_functions:
                other = publics.get(f.vendor_given or "")
                if other is not None and other is not f and not f.reads_file:
                    f.fail(f"its vendor symbol {f.vendor_given} is the public name of "
                           f"another function (line {other.line})")
        next_id = 1
        for s in self.specs:
            self._check_spec(s)
            for f in s.functions:
                if f.remoted:
                    f.api_id = next_id
                    next_id += 1
        for s in self.specs:
            for f in s.all_functions:
                f.public_symbol = f.name if f.reads_file else f.vendor
            self._resolve_vendor(s)
        self.max_api = next_id - 1
        self.hash = self._hash()

    # -- struct and union members ------------------------------------------
    def _resolve_members(self, s, owner, members, kind, depth=0):
        if depth > 8:
            members[0].fail("structs nest too deeply (a recursive type?)")
        for m in members:
            if m.inline:
                if m.count is not None and m.inline == "union":
                    m.fail("an array of anonymous unions is not supported")
                self._resolve_members(s, f"{owner}.{m.name}", m.members, m.inline, depth + 1)
                continue
            if m.kind is None:
                t = self.types.get(m.type_name)
                if t is None:
                    m.fail(f"unknown type '{m.type_name}'")
                if t.kind in ("opaque", "callback"):
                    m.fail(f"type '{t.name}' ({t.kind}) cannot be a member; use kind null-only")
                if t.name == owner.split(".")[0]:
                    m.fail("a struct cannot contain itself")
                m.type = t
                for field in ("dir", "size", "elem", "c-type") + (() if t.is_range else ("when", "extent")):
                    if m.node.get(field) is not None:
                        m.fail(f"'{field}' does not apply to a typed member"
                               + (" (only to a device address)" if field in ("when", "extent") else ""))
                if t.is_range:
                    # lakeD checks the address against the client's ranges
                    # (the bytes a call touches: 'extent', over sibling members).
                    if kind == "union" or depth or m.count:
                        m.fail("a device-address member is supported at a struct's top level only "
                               "(not in a union, a nested struct or an array)")
                    if m.extent_text is None:
                        m.fail(f"a {t.name} member needs 'extent' (the bytes a call touches from "
                               f"it, over the struct's members)")
                elif t.is_value:
                    m.fail(f"a {t.name} (a tracked value) cannot be a member")
            elif m.extent_text is not None:
                m.fail("'extent' applies to a device-address member (a tracked scalar type)")
            elif m.kind == "address":
                if m.c_type_override is not None and not m.c_type_override.strip().endswith("*"):
                    m.fail("kind 'address' is a pointer the vendor reads as a device address: 'c-type' must be a pointer")
            elif m.kind == "null-only":
                if not m.c_type_override:
                    m.fail("kind 'null-only' needs 'c-type', a pointer type")
                if not (m.c_type_override.strip().endswith("*") or
                        (self.types.get(m.c_type_override) or CType("", "x")).kind == "callback"):
                    m.fail("kind 'null-only' needs 'c-type', a pointer or callback type")
                if kind == "union":
                    m.fail("a union member cannot be a pointer")
            elif m.kind == "buffer":
                if kind == "union" or depth:
                    m.fail("host-pointer members are supported at a struct's top level only")
                if m.dir not in ("in", "out", "inout"):
                    m.fail(f"unknown dir '{m.dir}' (in, out or inout)")
                if m.elem_name is not None:
                    et = self.types.get(m.elem_name)
                    if et is None or et.kind not in ("scalar", "struct", "enum"):
                        m.fail(f"buffer elem '{m.elem_name}' must be a scalar, enum or struct type")
                    m.elem = et
                if (m.size_text is None) == (m.count is None):
                    m.fail("a buffer member needs exactly one of 'size' (bytes) or 'count' (elements)")
                if m.count is not None and m.elem is None:
                    m.fail("'count' needs 'elem'")

        # Second pass: references between siblings.
        for m in members:
            is_range = m.type is not None and m.type.is_range
            if m.kind == "buffer" or is_range:
                if is_range:
                    m.extent_ast = self._parse_size(str(m.extent_text), m.fail,
                                                    lambda n: self._member_operand(members, m, n),
                                                    None, None)
                else:
                    expr = m.size_text if m.size_text is not None else m.count
                    m.size_ast = self._parse_size(str(expr), m.fail,
                                                  lambda n: self._member_operand(members, m, n),
                                                  None, None)
                    if m.count is not None:
                        m.size_ast = ("mul", m.size_ast, ("sizeof", m.elem))
                if m.when_node is not None:
                    w = m.when_node
                    if not isinstance(w, dict) or set(w) != {"member", "is"}:
                        m.fail("'when' must be {member: M, is: VALUE}")
                    wm = next((x for x in members if x.name == w["member"]), None)
                    if wm is None or wm.kind is not None or wm.inline or wm.count or \
                            wm.type.kind != "enum":
                        m.fail(f"when: '{w['member']}' is not an enum member of the same struct")
                    val = s.enum_value(wm.type, w["is"]) if isinstance(w["is"], str) else None
                    if val is None:
                        m.fail(f"when: '{w['is']}' is not a value of {wm.type.name}")
                    m.when = (wm, val, w["is"])
            elif m.when_node is not None:
                m.fail("'when' applies to buffer and device-address members")
            if m.selector_name is not None:
                target = m.members if m.inline == "union" else \
                    (m.type.members if m.type is not None and m.type.kind == "union" else None)
                if target is None or m.count:
                    m.fail("'selector' applies to a union member")
                sel = next((x for x in members if x.name == m.selector_name), None)
                if sel is None or sel.kind is not None or sel.inline or sel.count or \
                        sel.type.kind not in ("enum", "scalar"):
                    m.fail(f"selector '{m.selector_name}' is not an enum or integer member of the same struct")
                m.selector = sel
                if not isinstance(m.allow_node, dict) or not m.allow_node:
                    m.fail("a selected union needs 'allow': {SELECTOR VALUE: union member}")
                for vname, uname in m.allow_node.items():
                    val = s.enum_value(sel.type, vname) if sel.type.kind == "enum" else \
                        (vname if _is_int(vname) else None)
                    if val is None:
                        m.fail(f"allow: '{vname}' is not a value of {sel.type.name}")
                    um = next((x for x in target if x.name == uname), None)
                    if um is None:
                        m.fail(f"allow: '{uname}' is not a member of the union")
                    if not _members_plain([um]):
                        m.fail(f"allow: union member '{uname}' holds handles or pointers, "
                               f"which LAKE cannot translate inside a union")
                    m.allow.append((val, str(vname), um))
            elif m.allow_node is not None:
                # An enum member's accepted values (others are refused).
                if m.kind is not None or m.inline or m.count or m.type.kind != "enum" or \
                        not isinstance(m.allow_node, list) or not m.allow_node:
                    m.fail("'allow' goes with 'selector' (a union member), or lists the accepted "
                           "values of an enum member")
                for vname in m.allow_node:
                    val = s.enum_value(m.type, vname) if isinstance(vname, str) else None
                    if val is None:
                        m.fail(f"allow: '{vname}' is not a value of {m.type.name}")
                    m.accepted.append((val, vname))

    def _order_types(self, s):
        """The spec's types in an order C accepts: records after the records
        they contain (and after every non-record type)."""
        out, seen = [t for t in s.types if not t.is_record], set()

        def visit(t):
            if t.name in seen or t.spec is not s:
                return
            seen.add(t.name)
            stack = list(t.members)
            while stack:
                m = stack.pop()
                stack.extend(m.members)
                for dep in (m.type, m.elem):
                    if dep is not None and dep.is_record:
                        visit(dep)
            out.append(t)
        for t in s.types:
            if t.is_record:
                visit(t)
        return out

    def _member_operand(self, members, m, name):
        q = next((x for x in members if x.name == name), None)
        if q is None:
            m.fail(f"bad size expression: unknown member '{name}'")
        if q.kind is not None or q.inline or q.count or q.type.kind not in ("scalar", "enum"):
            m.fail(f"bad size expression: '{name}' is not a scalar member")
        return ("member", q)

    def _check_record(self, s, t):
        if not t.members:
            _fail(s.path, t, f"{t.kind} '{t.name}' has no fields")
        if t.kind == "union":
            for m in t.members:
                if m.kind not in (None, "address"):
                    m.fail("a union member cannot be a host pointer")
        for m in t.members:
            if m.kind == "buffer" and m.elem is not None and m.elem.is_record:
                if m.elem.handle_leaves or m.elem.ptr_members or m.elem.range_members or \
                        _has_unsafe_union(m.elem.members):
                    m.fail(f"buffer elem '{m.elem.name}' must not contain handles, pointers or "
                           f"device addresses")
                if m.dir != "in" and m.elem.needs_check:
                    m.fail("a buffer of structs with selected unions is an input")
            sub = m.type if m.type is not None and m.type.is_record else None
            if sub is not None and sub.ptr_members:
                m.fail(f"'{sub.name}' has host-pointer members: it cannot be nested")
            if sub is not None and (sub.range_members or sub.accepting_members):
                m.fail(f"'{sub.name}' has device-address or accepted-value members: it cannot be nested")
            if m.inline:
                for x in m.members:
                    if x.kind == "buffer":
                        x.fail("host-pointer members are supported at a struct's top level only")

    # -- checks ------------------------------------------------------------
    def _check_spec(self, s):
        rt = self.types.get(s.result_name)
        if rt is None or rt.kind != "enum":
            _fail(s.path, s.result_node, f"result type '{s.result_name}' must be an enum of the spec")
        s.result = rt
        names = {v["name"] for v in rt.values}
        for key, val in [("success", s.success)] + list(s.errors.items()):
            if val is None:
                continue    # an optional error the spec does not use
            if val not in names:
                _fail(s.path, s.result_node,
                      f"result {key}: '{val}' is not a value of {s.result_name}")
        fnames = {f.name: f for sp in self.specs for f in sp.all_functions}
        for t in s.types:
            if t.destroy:
                fn = fnames.get(t.destroy)
                if fn is None:
                    _fail(s.path, t, f"type '{t.name}': destroy function '{t.destroy}' is not in a spec")
                t.destroy_fn = fn
        for f in s.all_functions:
            self._check_function(s, f)
        if rt.values and {v["name"]: v["value"] for v in rt.values}[s.success] != 0:
            _fail(s.path, s.result_node, "the success value must be 0")
        helpers = {}
        for key, fname in s.daemon.items():
            if fname is None:
                helpers[key] = None
                continue
            fn = fnames.get(fname)
            if fn is None or fn.spec is not s or fn.compat:
                _fail(s.path, s.daemon_node, f"daemon {key}: '{fname}' is not a function of this spec")
            helpers[key] = fn
        s.helpers = helpers
        sync = helpers.get("stream_sync")
        if sync is not None and (len(sync.params) != 1 or not sync.params[0].is_handle):
            _fail(s.path, s.daemon_node, "daemon stream-sync must take exactly one stream handle")
        pinfo = helpers.get("param_info")
        if pinfo is not None and [p.dir for p in pinfo.params] != ["in", "in", "out", "out"]:
            _fail(s.path, s.daemon_node, "daemon param-info must take (function, index, *offset, *size)")
        if any(f.learns for f in s.functions) and pinfo is None:
            _fail(s.path, s.raw, "'learn-params' needs a daemon param-info function")
        if any(f.reads_file for f in s.functions) and s.errors["no_file"] is None:
            _fail(s.path, s.result_node, "a 'file' parameter needs result.errors.no-file")
        if any(p.capacity_of for f in s.functions for p in f.params) and s.errors["too_small"] is None:
            _fail(s.path, s.result_node, "an out buffer counted by '*p' needs result.errors.too-small "
                                         "(what the caller gets when lakeD reports more than fits)")
        if any(f.is_async and f.stageable for f in s.functions) and sync is None:
            _fail(s.path, s.raw, "async functions with buffers need a daemon stream-sync function")
        if any(f.is_async for f in s.functions if f.remoted) and sync is None:
            _fail(s.path, s.raw, "async functions need a daemon stream-sync function (tests use it)")
        setcur = helpers.get("set_current")
        s.context_type = None
        if setcur is not None:
            if len(setcur.params) != 1 or not setcur.params[0].is_handle \
                    or setcur.params[0].dir != "in" or not setcur.remoted:
                _fail(s.path, s.daemon_node, "daemon set-current must be a remoted function "
                                             "taking exactly one input handle (the context)")
            s.context_type = setcur.params[0].type
        # A counted reference ('retains') needs the one function that drops it,
        # which lakeD calls for each reference a client leaves behind.
        s.releasers = _one_per_type(
            s, "releases", "retains", "releases {} references",
            lambda f, p: len(f.params) == 1 and f.remoted,
            "a releasing function must be remoted and take only the reference",
            "nothing releases {} references: give one function 'lifetime: releases'")
        # The calling thread's context stack: lakeD keeps it (the serving
        # threads' own stacks are shared by every caller they serve), and
        # answers these itself, making the caller's context current.
        for key, op, shape in (("push_current", "push", ["in"]), ("pop_current", "pop", ["out"])):
            fn = helpers.get(key)
            if fn is None:
                continue
            if s.context_type is None or [p.dir for p in fn.params] != shape or \
                    fn.params[0].type is not s.context_type or not fn.remoted or fn.params[0].lifetime:
                _fail(s.path, s.daemon_node, f"daemon {key.replace('_', '-')} must be a remoted "
                                             f"function taking one {'input' if op == 'push' else 'output'} "
                                             f"context (and needs set-current)")
            fn.context_op = op
        for f in s.functions:
            if f.context == "own" and s.context_type is None:
                f.fail("'context: own' needs a daemon set-current function (the context type)")
        # Address range reservations: the one function per type that gives one
        # back takes (address, size), the size being the whole reservation;
        # lakeD calls it for each reservation a client leaves (after the
        # spec's unmap function over it: a reservation may hold mappings).
        s.unreservers = _one_per_type(
            s, "unreserves", "reserves", "gives {} reservations back",
            lambda f, p: (len(f.params) == 2 and f.params[0] is p and f.remoted and
                          f.params[1].kind is None and f.params[1].type.kind == "scalar" and
                          f.params[1].dir == "in" and not f.params[1].type.tracked),
            "a function that gives a reservation back must be remoted and take (the address, its size)",
            "nothing gives {} reservations back: give one function 'lifetime: unreserves'")
        unmap = helpers.get("unmap")
        if unmap is not None:
            if len(unmap.params) != 2 or not unmap.params[0].type or not unmap.params[0].type.is_range \
                    or unmap.params[0].dir != "in" or not unmap.remoted or \
                    unmap.params[1].kind is not None or unmap.params[1].type.kind != "scalar":
                _fail(s.path, s.daemon_node, "daemon unmap must be a remoted function taking "
                                             "(a device address, a size)")
        if s.unreservers and unmap is None:
            _fail(s.path, s.daemon_node, "reservations need a daemon unmap function (lakeD unmaps "
                                         "a reservation a client leaves before giving it back)")
        for t in s.types:
            if t.destroy_fn:
                dfn = t.destroy_fn
                if len(dfn.params) != 1 or dfn.params[0].type is not t or not dfn.remoted:
                    _fail(s.path, t, f"type '{t.name}': destroy function '{t.destroy}' must be "
                                     f"a remoted function taking exactly one {t.name}")

    def _check_function(self, s, f):
        if f.mode not in MODES:
            f.fail(f"unknown mode '{f.mode}' (known: {', '.join(MODES)})")
        if f.refused is not None:
            for key in ("mode", "stream", "impl"):
                if f.node.get(key) is not None:
                    f.fail(f"a refused function takes no '{key}'")
        elif f.mode == "local":
            if f.impl not in LOCAL_IMPLS + COMPAT_IMPLS:
                f.fail(f"a local function needs 'impl' (one of: {', '.join(LOCAL_IMPLS + COMPAT_IMPLS)})")
        elif f.impl is not None:
            f.fail("'impl' is only for local functions")
        if f.impl in COMPAT_SHAPES and f.refused is None:
            shape = COMPAT_SHAPES[f.impl]
            if len(f.params) != len(shape[1]):
                f.fail(f"impl {f.impl} needs the parameters {shape[0]}")
        names = [p.name for p in f.params]
        for p in f.params:      # resolve types first: size expressions look ahead
            if p.kind in (None, "handles") and p.type_name is not None:
                p.type = self.types.get(p.type_name)
                if p.type is None:
                    p.fail(f"unknown type '{p.type_name}'")
        out_bit = 0
        for i, p in enumerate(f.params):
            p.index = i
            if names.count(p.name) > 1:
                p.fail("duplicate parameter name")
            self._check_param(s, f, p)
            if p.is_out:
                p.out_bit = out_bit
                out_bit += 1
        if out_bit > 32:
            f.fail("more than 32 outputs")
        self._check_trust(f)
        if f.is_async:
            if f.outs or f.ext_outs or any(p.kind == "handles" and p.dir != "in" for p in f.params):
                f.fail("an async function cannot have outputs")
            if not f.stream:
                f.fail("an async function needs 'stream' (its stream parameter)")
        if f.stream is not None:
            if "." in f.stream:
                sp, mname = f.stream_member
                if sp is None or sp.by is None or \
                        not any(path == mname for path, _ in sp.type.handle_leaves):
                    f.fail(f"stream '{f.stream}' is not a handle member of a struct parameter")
                if [b for b in f.buffers if not b.checked] or f.async_buffers:
                    f.fail("an async function whose stream is a struct member cannot take buffers")
            else:
                sp = f.param(f.stream)
                if sp is None or not sp.is_handle or sp.dir != "in":
                    f.fail(f"stream '{f.stream}' is not an input handle parameter")
            if not f.is_async:
                f.fail("'stream' is only for async functions")
        for p in f.params:
            if p.kind == "local-out" and f.mode != "local":
                p.fail("kind 'local-out' is only for local functions")
            if p.kind == "raw" and f.refused is None and not (f.mode == "local" and f.compat):
                p.fail("kind 'raw' is only for refused functions and the compat locals")
        if f.impl in COMPAT_SHAPES and f.refused is None:
            want = COMPAT_SHAPES[f.impl]
            if tuple(p.c_type for p in f.params) != want[1]:
                f.fail(f"impl {f.impl} needs the parameters {want[0]}")
        if f.mode == "local" and f.refused is None:
            kinds = (None, "local-out", "raw") if f.compat else (None, "local-out")
            for p in f.params:
                if p.kind not in kinds or (p.kind is None and (p.dir != "in" or p.by)):
                    p.fail("a local function takes typed inputs and local-out parameters"
                           + (" (and raw ones)" if f.compat else ""))

    def _check_param(self, s, f, p):
        if p.kind is not None and p.kind not in PARAM_KINDS:
            p.fail(f"unknown kind '{p.kind}' (known: {', '.join(PARAM_KINDS)})")
        for field in ("allow", "selector", "types", "key", "fallback"):
            if p.node.get(field) is not None and not (
                    (field == "allow" and p.kind == "buffer") or
                    (field in ("selector", "types") and p.kind == "attribute") or
                    (field in ("key", "fallback") and p.kind == "string-out")):
                p.fail(f"'{field}' does not apply to this parameter")
        if p.by is not None:
            if p.kind is not None or p.by not in ("pointer", "const-pointer"):
                p.fail("'by' is 'pointer' or 'const-pointer', for a typed struct parameter")
        if p.kind is None:
            if p.type_name is None:
                p.fail("needs a 'type' or a 'kind'")
            t = self.types.get(p.type_name)
            if t is None:
                p.fail(f"unknown type '{p.type_name}'")
            if t.kind == "opaque":
                p.fail(f"type '{t.name}' is opaque: it can only be used behind a null-only pointer")
            if t.kind == "callback":
                p.fail(f"type '{t.name}' is a callback: use kind null-only (or refuse the function)")
            if p.dir not in ("in", "out", "inout"):
                p.fail(f"unknown dir '{p.dir}' (in, out or inout)")
            p.type = t
            for field in ("size", "count", "elem", "max", "function", "c-type"):
                if p.node.get(field) is not None:
                    p.fail(f"'{field}' does not apply to a typed parameter")
            if t.is_record:
                if p.dir == "in" and p.by is None:
                    p.fail(f"a {t.kind} input is passed 'by: pointer' or 'by: const-pointer'")
                if p.by is not None and p.dir != "in":
                    p.fail("'by' applies to inputs (outputs are pointers already)")
                if t.kind == "union" and not t.is_plain:
                    p.fail(f"union '{t.name}' holds handles: pass it as kind 'attribute'")
                if p.dir != "in" and t.ptr_members and any(m.kind == "buffer" for m in t.ptr_members):
                    p.fail(f"'{t.name}' has host-pointer members: it can only be an input")
                if p.dir != "in" and t.needs_check:
                    p.fail(f"'{t.name}' has selected unions: it can only be an input")
            elif p.by is not None:
                p.fail("'by' applies to struct types")
        elif p.kind == "handles":
            if p.type is None or p.type.kind != "handle":
                p.fail("kind 'handles' needs 'type', a handle type")
            if p.dir not in ("in", "out"):
                p.fail(f"unknown dir '{p.dir}' (in or out)")
            if p.count is None or p.size is not None:
                p.fail("kind 'handles' needs 'count' (elements)")
            for field in ("elem", "max", "function", "c-type", "learn-params"):
                if p.node.get(field) is not None:
                    p.fail(f"'{field}' does not apply to kind 'handles'")
            if p.lifetime is not None:
                p.fail("handles in an array are looked up, not created or destroyed")
            p.size_ast = ("mul", self._param_size(f, p, str(p.count)), ("const", 8))
            if p.dir == "in" and p.size_ast[1][0] != "param":
                p.fail("an input handle array's 'count' is an input parameter")
        else:
            if p.type_name is not None:
                p.fail(f"kind '{p.kind}' takes no 'type'")
        if p.from_file:
            if p.dir != "in" or not isinstance(p.max, int) or isinstance(p.max, bool) \
                    or not 2 <= p.max <= 4096:
                p.fail("a file is an input with 'max' between 2 and 4096 (bytes of its path, NUL included)")
            if p.size is None or p.count is not None or p.elem_name is not None:
                p.fail("a file needs 'size', an expression of its contents (module_image_size(...))")
        elif p.max is not None and p.kind == "buffer":
            p.fail("'max' does not apply to a buffer")
        if p.kind == "buffer":
            if p.dir not in ("in", "out", "inout"):
                p.fail(f"unknown dir '{p.dir}' (in, out or inout)")
            if p.elem_name is not None:
                et = self.types.get(p.elem_name)
                if et is None or et.kind not in ("scalar", "struct", "enum"):
                    p.fail(f"buffer elem '{p.elem_name}' must be a scalar, enum or struct type")
                if et.is_record and (et.handle_leaves or et.ptr_members or et.range_members
                                     or _has_unsafe_union(et.members)):
                    p.fail(f"buffer elem '{et.name}' must not contain handles, pointers or "
                           f"device addresses")
                p.elem = et
            if (p.size is None) == (p.count is None):
                p.fail("a buffer needs exactly one of 'size' (bytes) or 'count' (elements)")
            if p.count is not None and p.elem is None:
                p.fail("'count' needs 'elem'")
            if p.c_type_override is not None and not p.c_type_override.strip().endswith("*"):
                p.fail("a buffer's 'c-type' must be a pointer type")
            if p.allow_node is not None:
                if p.elem is None or p.elem.kind != "enum" or not isinstance(p.allow_node, list):
                    p.fail("'allow' lists the accepted values of a buffer of enums")
                for vname in p.allow_node:
                    val = s.enum_value(p.elem, vname) if isinstance(vname, str) else None
                    if val is None:
                        p.fail(f"allow: '{vname}' is not a value of {p.elem.name}")
                    p.allow.append((val, vname))
                if not p.allow:
                    p.allow.append((None, None))     # nothing accepted: the count must be 0
            if p.checked and p.dir != "in":
                p.fail("a checked buffer (allowed values, selected unions) is an input")
            expr = p.size if p.size is not None else p.count
            p.size_ast = self._param_size(f, p, str(expr))
            if p.count is not None:
                p.size_ast = ("mul", p.size_ast, ("sizeof", p.elem))
        elif p.kind == "string":
            if not _is_int(p.max) or not 2 <= p.max <= 4096:
                p.fail("a string needs 'max' between 2 and 4096 (bytes, NUL included)")
        elif p.kind == "string-out":
            if not _is_int(p.max) or not 2 <= p.max <= 1024:
                p.fail("a string-out needs 'max' between 2 and 1024 (bytes, NUL included)")
            key = f.param(p.key_name) if p.key_name else None
            if key is None or not key.is_in_value or key.type.kind != "enum":
                p.fail("a string-out needs 'key': the enum input its text is cached by")
            p.key = key
            if p.fallback not in (None, "value-name", "value-doc"):
                p.fail("'fallback' is value-name or value-doc (what to answer without lakeD)")
            if p.dir != "in":
                p.fail("a string-out takes no 'dir'")
        elif p.kind == "attribute":
            if p.dir not in ("in", "out"):
                p.fail(f"unknown dir '{p.dir}' (in or out)")
            sel = f.param(p.selector_name) if p.selector_name else None
            if sel is None or not sel.is_in_value or sel.type.kind != "enum":
                p.fail("an attribute needs 'selector': the enum input naming the attribute")
            p.selector = sel
            if not isinstance(p.types_node, dict) or not p.types_node:
                p.fail("an attribute needs 'types': {ATTRIBUTE VALUE: type of its value}")
            for vname, tname in p.types_node.items():
                val = s.enum_value(sel.type, vname) if isinstance(vname, str) else None
                if val is None:
                    p.fail(f"types: '{vname}' is not a value of {sel.type.name}")
                t = self.types.get(tname) if isinstance(tname, str) else None
                if t is None or t.kind not in ("scalar", "enum", "handle", "struct", "union"):
                    p.fail(f"types: '{tname}' is not a scalar, enum, handle or plain struct type")
                if t.is_record and not t.is_plain:
                    p.fail(f"types: '{tname}' holds handles or pointers")
                if p.dir == "in" and t.kind == "scalar" and t.tracked:
                    p.fail(f"types: an input {tname} would reach lakeD unchecked (a device address "
                           f"or tracked value is a parameter of its own, with its checks)")
                if t.is_record and t.size > ATTR_BYTES:
                    p.fail(f"types: '{tname}' is larger than {ATTR_BYTES} bytes")
                p.attr_types.append((val, vname, t))
            if p.c_type_override is not None and not p.c_type_override.strip().endswith("*"):
                p.fail("an attribute's 'c-type' must be a pointer type")
        elif p.kind == "kernel-params":
            fp = f.param(p.function) if p.function else None
            if fp is None or not fp.is_handle or fp.dir != "in":
                p.fail("'function' must name an input handle parameter")
        elif p.kind == "launch-extra":
            if not any(q.kind == "kernel-params" for q in f.params):
                p.fail("kind 'launch-extra' goes with a kernel-params parameter")
        elif p.kind in ("null-only", "local-out", "raw"):
            ct = (p.c_type_override or "").strip()
            cb = self.types.get(ct)
            if not ct or not (ct.endswith("*") or (cb is not None and cb.kind == "callback")
                              or (p.kind == "raw" and ct)):
                p.fail(f"kind '{p.kind}' needs 'c-type', a pointer{' or callback' if p.kind == 'null-only' else ''} type")
        if p.lifetime is not None:
            if p.lifetime not in LIFETIMES:
                p.fail(f"unknown lifetime '{p.lifetime}' ({', '.join(LIFETIMES)})")
            if p.lifetime in ("retains", "releases"):
                if p.type is None or p.dir != "in" or p.type.kind not in ("scalar", "enum") \
                        or p.type.tracked:
                    p.fail(f"'lifetime: {p.lifetime}' applies to an input scalar (the value "
                           f"a counted reference is taken on)")
            elif p.type is None or not (p.type.kind == "handle" or p.type.tracked):
                p.fail("'lifetime' applies to handles and tracked scalars (types with 'destroy')")
            if p.lifetime in ("creates", "reserves") and p.dir != "out":
                p.fail(f"'lifetime: {p.lifetime}' applies to an output")
            if p.lifetime in ("destroys", "unreserves") and p.dir != "in":
                p.fail(f"'lifetime: {p.lifetime}' applies to an input")
            if p.lifetime in ("reserves", "unreserves") and not (p.type.kind == "scalar" and p.type.is_range):
                p.fail(f"'lifetime: {p.lifetime}' applies to a device address (an address range "
                       f"reservation)")
        is_range = p.kind is None and p.type is not None and p.type.is_range
        is_value = p.kind is None and p.type is not None and p.type.is_value
        if p.parent is not None:
            pp = f.param(p.parent)
            if not ((p.is_handle or p.kind == "handles" or is_range) and p.dir == "out"):
                p.fail("'parent' applies to an output handle, handle array or device address")
            if pp is None or not pp.is_handle or pp.dir != "in":
                p.fail(f"parent '{p.parent}' is not an input handle parameter")
        if p.owned is not False:
            if p.owned is not True or not p.is_handle or p.dir != "in" or p.lifetime is not None:
                p.fail("'owned: true' applies to an input handle (one the client must have created)")
        if p.untracked is not False:
            if p.untracked is not True or not is_range or p.dir != "out" or p.lifetime is not None \
                    or p.parent is not None or p.extent is not None:
                p.fail("'untracked: true' applies to an output device address that names no range "
                       "of the client (no lifetime, parent or extent): a number passed back")
        # A tracked scalar (a device address) names a range of bytes: lakeD
        # checks every one a client passes against that client's own ranges.
        if p.extent is not None:
            if not (is_range or (is_value and p.dir == "out" and p.lifetime == "creates")):
                p.fail("'extent' applies to device addresses (tracked scalars such as CUdeviceptr), "
                       "and to a created tracked value (the device memory it holds)")
            if p.lifetime in ("destroys", "unreserves"):
                p.fail("a destroyed value names a whole range: it takes no 'extent'")
            if is_range and p.dir == "out" and p.lifetime not in ("creates", "reserves") \
                    and p.parent is None:
                p.fail("an output range needs 'lifetime: creates' or 'reserves', or a 'parent' "
                       "that owns it (or, for an address that is no range, 'untracked: true')")
            p.extent_ast = self._param_size(f, p, str(p.extent), allow_outs=p.dir == "out")
        elif is_range and p.lifetime not in ("destroys", "unreserves") and not p.untracked \
                and f.refused is None:
            p.fail(f"a {p.type.name} needs 'extent' (the bytes it spans from this address; 0: "
                   f"none are touched), 'lifetime: destroys', or on an output 'untracked: true'")
        if p.learn_params is not None:
            if not (p.is_handle and p.dir == "out"):
                p.fail("'learn-params' applies to an output handle")
            if f.learns is not None:
                p.fail("only one output can learn kernel parameters")
            np = f.param(p.learn_params) if isinstance(p.learn_params, str) else None
            if np is None or np.kind != "string" or p.parent is None:
                p.fail("'learn-params' names the string parameter with the kernel's name, "
                       "and the output needs a 'parent' (the module whose image has the kernel)")
            p.name_param = np
            f.learns = p
        if p.nul_terminated and not (p.kind == "buffer" and p.dir == "out" and p.elem is not None
                                     and p.elem.name == "char"):
            p.fail("'nul-terminated' applies to an output buffer of char")
        if p.dir == "out" and p.type is not None and p.type.kind == "handle" \
                and p.lifetime is None and p.parent is None and not p.learn_params:
            pass  # a looked-up handle (e.g. cuCtxGetCurrent): registered without ownership

    def _check_trust(self, f):
        """Resolves kernels-from; and an inout scalar whose input counts an
        out buffer is a capacity: the client clamps the count lakeD returns."""
        for p in f.params:
            if p.kernels_from is None:
                continue
            ip = f.param(p.kernels_from) if isinstance(p.kernels_from, str) else None
            if not (p.is_handle and p.dir == "out"):
                p.fail("'kernels-from' applies to an output handle (the loaded module)")
            if ip is None or ip.kind != "buffer" or ip.dir != "in" or ip.size_ast[0] != "fn":
                p.fail("'kernels-from' names the module image: an input buffer or file sized "
                       "by module_image_size()")
            p.image_param = ip

        def derefs(node):
            if node[0] == "deref":
                yield node[1]
            for child in node[1:]:
                if isinstance(child, tuple):
                    yield from derefs(child)
        def exact(b, q):
            """b holds exactly *q elements."""
            return b.size_ast[0] == "mul" and b.size_ast[1] == ("deref", q) and \
                b.size_ast[2][0] in ("sizeof", "const")
        for b in f.buffers + f.handle_arrays:
            if b.dir == "in":
                continue
            for q in derefs(b.size_ast):
                if q.capacity_of is not None and q.capacity_of is not b and \
                        not (exact(b, q) and exact(q.capacity_of, q)):
                    q.fail("counts two output buffers (of different sizes)")
                if q.capacity_of is None:
                    q.capacity_of = b


    # -- size expressions -------------------------------------------------
    def _param_size(self, f, p, text, allow_outs=False):
        """A parameter's size expression; with @allow_outs it may name output
        scalars (an extent that is only known after the call, pitch * height)."""
        def name(n):
            q = f.param(n)
            if q is None:
                p.fail(f"bad size expression '{text}': unknown parameter '{n}'")
            if allow_outs and q.kind is None and q.dir == "out" and q is not p \
                    and q.type.kind == "scalar" and not q.type.tracked:
                q.sizes_extent = True   # lakeD always asks the vendor for it
                return ("out", q)
            if q.kind is not None or q.type.kind not in ("scalar", "enum") or q.dir != "in":
                p.fail(f"bad size expression '{text}': '{n}' is not an input scalar")
            return ("param", q)

        def deref(n):
            q = f.param(n)
            if q is None or not q.is_inout or q.type.kind != "scalar":
                p.fail(f"bad size expression '{text}': '*{n}' needs an inout scalar")
            return ("deref", q)

        def buffer(fname, n):
            q = f.param(n)
            if q is None or q.kind != "buffer":
                p.fail(f"bad size expression '{text}': {fname}() takes a buffer parameter")
            return ("fn", SIZE_FUNCTIONS[fname], q)

        return self._parse_size(text, lambda m: p.fail(f"bad size expression '{text}'{m}"),
                                name, deref, buffer, raw_fail=p.fail)

    def _parse_size(self, text, fail, name, deref, buffer, raw_fail=None):
        """Parses a size expression into a small tree; rejects anything unsafe.

        @name, @deref, @buffer resolve an identifier, a '*p' and the argument
        of a buffer size function (None where not allowed)."""
        raw_fail = raw_fail or fail
        # '*p' (the input value of an inout scalar) is a unary '*', which Python
        # lacks: each unary '*name' becomes '__deref_name' before parsing.
        try:
            tree = ast.parse(_rewrite_deref(text), mode="eval").body
        except SyntaxError:
            raw_fail(f"bad size expression '{text}'")

        def walk(n):
            if isinstance(n, ast.Name) and n.id.startswith("__deref_"):
                if deref is None:
                    raw_fail(f"bad size expression '{text}': '*' is for parameters")
                return deref(n.id[len("__deref_"):])
            if isinstance(n, ast.Constant) and _is_int(n.value):
                if n.value < 0:
                    raw_fail(f"bad size expression '{text}': negative constant")
                return ("const", n.value)
            if isinstance(n, ast.Name):
                return name(n.id)
            if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub, ast.Mult)):
                op = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}[type(n.op)]
                return (op, walk(n.left), walk(n.right))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and not n.keywords:
                if n.func.id == "sizeof" and len(n.args) == 1 and isinstance(n.args[0], ast.Name):
                    t = self.types.get(n.args[0].id)
                    if t is None or t.kind not in ("scalar", "struct", "enum", "union"):
                        raw_fail(f"bad size expression '{text}': sizeof of unknown type '{n.args[0].id}'")
                    return ("sizeof", t)
                if n.func.id in SIZE_FUNCTIONS and len(n.args) == 1 and isinstance(n.args[0], ast.Name):
                    if buffer is None:
                        raw_fail(f"bad size expression '{text}': {n.func.id}() is for parameters")
                    return buffer(n.func.id, n.args[0].id)
                if n.func.id in SIZE_CALLS:
                    cname, nargs = SIZE_CALLS[n.func.id]
                    if len(n.args) != nargs:
                        raw_fail(f"bad size expression '{text}': {n.func.id}() takes {nargs} arguments")
                    return ("call", cname, [walk(a) for a in n.args])
                raw_fail(f"bad size expression '{text}': unknown function '{n.func.id}'")
            raw_fail(f"bad size expression '{text}': only parameters, integers, + - *, "
                     f"sizeof(T), *p and the known size functions are allowed")

        return walk(tree)

    # -- vendor symbols ---------------------------------------------------
    def _resolve_vendor(self, s):
        """Derives each function's vendor symbol from the vendor header's
        '#define name name_vN' (where lakegen was given the header): an
        explicit 'vendor:' must agree; a function the header lacks is an error."""
        info = self.vendor.get(s.name)
        if info is None:
            return
        for f in s.all_functions:
            derived = info.symbols.get(f.name, f.name)
            f.public_symbol = derived
            if f.reads_file:
                # The stub reads the file; lakeD calls another function
                # (cuModuleLoad -> cuModuleLoadData), which must exist.
                if f.vendor not in info.declared:
                    f.fail(f"{info.header} declares no function {f.vendor}")
                f.ptds = f.name in info.ptds
                f.procs = self._proc_entries(s, f, info)
                continue
            if f.vendor_given is not None and f.vendor_given != derived:
                f.fail(f"{info.header} #defines {f.name} as {derived}, but the spec says "
                       f"vendor: {f.vendor_given}")
            if derived not in info.declared and f.name not in info.declared:
                f.fail(f"{info.header} declares no function {f.name}"
                       f"{'' if derived == f.name else ' (' + derived + ')'}")
            f.vendor = derived
            other = next((g for g in s.all_functions if g.name == derived and g is not f), None)
            if other is not None:
                f.fail(f"{info.header} #defines {f.name} as {derived}, the public name of "
                       f"another function of the spec (line {other.line})")
            f.ptds = f.name in info.ptds
            f.procs = self._proc_entries(s, f, info)

    def _proc_entries(self, s, f, info):
        """The names cuGetProcAddress answers with f: [(name, since, until,
        first)].  The vendor's typedefs header lists each ABI a name has had
        (PFN_name_vVERSION); f implements the one whose parameters are f's,
        from its version until the next one.  A name with ABIs none of which
        is f's is not answered; one the header does not list always is."""
        aliases = {a: t.name for sp in self.specs for t in sp.types for a in t.aliases}
        ours = [_norm_type(p.c_type, aliases) for p in f.params]
        out = []
        base = re.sub(r"_v\d+$", "", f.public_symbol)
        for name in dict.fromkeys([f.name, base]):
            versions = info.versions.get(name)
            if not versions:
                if name == f.name:
                    out.append((name, f.since or 0, 0, 0))
                continue
            match = [v for v, params in versions
                     if [_norm_type(" ".join(t), aliases) for t in params] == ours]
            if f.since is not None and name == f.name:
                if f.since not in [v for v, _ in versions]:
                    f.fail(f"since: {f.since} is not a version of {f.name} in the typedefs header "
                           f"(it has {', '.join(str(v) for v, _ in versions)})")
                match = [f.since]
            if not match:
                continue
            # Consecutive ABIs with the same parameters are one ABI to a caller.
            order = [v for v, _ in versions]
            since = match[-1]
            while order.index(since) > 0 and order[order.index(since) - 1] in match:
                since = order[order.index(since) - 1]
            later = [v for v, _ in versions if v > match[-1]]
            out.append((name, since, later[0] if later else 0, versions[0][0]))
            if (name, since) in info.visible:
                f.proc_checks.append((name, since))
        return out

    def _hash(self):
        """A hash of everything that shapes the wire: both sides must agree on it."""
        canon = json.dumps([s.raw for s in self.specs], sort_keys=True, default=str)
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


def _norm_type(text, aliases):
    """A C type as a canonical token string: aliases resolved, spacing fixed."""
    toks = re.findall(r"[A-Za-z_]\w*|\S", text)
    return " ".join(aliases.get(t, t) for t in toks)


def _rewrite_deref(text):
    """Turns each unary '*name' into '__deref_name' (binary '*' is kept)."""
    out, prev = [], None
    for tok in re.findall(r"[A-Za-z_]\w*|\d+|\S", text):
        if tok == "*" and (prev is None or prev in "(+-*,"):
            out.append("__deref_")
            prev = "__deref_"
            continue
        if prev == "__deref_":
            out[-1] += tok
        else:
            out.append(tok)
        prev = tok
    return " ".join(out)


def size_c(node, side, base=""):
    """Renders a size tree as C that sets `ovf` on overflow.

    side is "client" (values are the stub's parameters) or "server" (values are
    fields of the unpacked argument struct `a` and resolved buffers).  Members
    of a struct are read through @base (e.g. "s->")."""
    kind = node[0]
    if kind == "const":
        return f"(__u64){node[1]}ULL"
    if kind in ("param", "member"):
        p = node[1]
        v = (p.name if side == "client" else f"a->{p.name}") if kind == "param" else f"{base}{p.name}"
        return f"lake_sz_from_s64(&ovf, (long long)({v}))" if p.type.wire.startswith("__s") \
            else f"(__u64)({v})"
    if kind == "out":
        p = node[1]
        if side == "client":
            return f"({p.name} ? (__u64)*{p.name} : 0)"
        return f"(__u64)(out_{p.name})"
    if kind == "deref":
        p = node[1]
        if side == "client":
            return f"({p.name} ? (__u64)*{p.name} : 0)"
        return f"(__u64)(a->{p.name})"
    if kind == "sizeof":
        return f"(__u64)sizeof({node[1].wire})"
    if kind == "fn":
        fn, q = node[1], node[2]
        if side == "client":
            return f"{fn}({q.name}, (__u64)-1)"
        return f"{fn}(buf_{q.name}, a->{q.name}.len)"
    if kind == "call":
        return f"{node[1]}(&ovf, " + ", ".join(size_c(a, side, base) for a in node[2]) + ")"
    op = {"add": "lake_sz_add", "sub": "lake_sz_sub", "mul": "lake_sz_mul"}[kind]
    return f"{op}(&ovf, {size_c(node[1], side, base)}, {size_c(node[2], side, base)})"
