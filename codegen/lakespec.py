"""Loading and checking LAKE API specs (api-spec/*.yaml).

The loader keeps the line of every mapping so that any problem is reported as
``file:line: problem`` (SpecError), never as a Python traceback.  The checked
result is a small model (Spec, CType, Function, Param) that the templates read.
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
    "unsigned char": "__u8",
    "short": "__s16",
    "unsigned short": "__u16",
    "int": "__s32",
    "unsigned int": "__u32",
    "long long": "__s64",
    "unsigned long long": "__u64",
    "size_t": "__u64",
    "float": "float",
    "double": "double",
}

TYPE_KINDS = ("scalar", "handle", "enum", "struct", "opaque")
PARAM_KINDS = ("buffer", "string", "kernel-params", "null-only", "local-out", "file",
               "launch-extra")
MODES = ("sync", "async", "local", "daemon")
LOCAL_IMPLS = ("error-name", "error-string")
ERROR_KEYS = ("unavailable", "timeout", "interrupted", "invalid", "unsupported",
              "no-memory", "protocol", "invalid-handle", "no-vendor")
# Optional error kinds, and the kind each falls back to when a spec omits it
# (None: needed only by specs that use what they answer: a `file` parameter
# needs no-file, a count output clamped to the caller's capacity too-small).
OPTIONAL_ERROR_KEYS = {"not-held": "invalid", "no-file": None, "too-small": None}
DAEMON_HELPERS = ("stream-sync", "param-info", "set-current")
LIFETIMES = ("creates", "destroys", "retains", "releases")
SIZE_FUNCTIONS = {"module_image_size": "lake_module_image_size"}
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

MAX_KPARAMS = 128     # must match LAKE_MAX_KPARAMS in proto/lake_wire.h


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


class CType:
    """A type named in a spec (or a built-in scalar)."""

    def __init__(self, name, kind, spec=None, doc="", c_type=None, tag=None,
                 values=(), fields=(), destroy=None, line=0):
        self.name, self.kind, self.spec, self.doc = name, kind, spec, doc
        self.c_type, self.tag, self.values, self.fields = c_type, tag, values, fields
        self.destroy, self.line = destroy, line
        self.destroy_fn = None          # resolved Function

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
        if self.kind == "struct":
            return f"struct lake_wire_{self.name}"
        raise AssertionError(self.kind)

    @property
    def tracked(self):
        return self.destroy is not None


class Param:
    def __init__(self, fn, node, path):
        self.fn, self.line = fn, node.line
        self.name = _need(path, node, "name")
        if not IDENT.match(self.name):
            _fail(path, node, f"parameter name '{self.name}' is not a C identifier")
        _only(path, node, ("name", "type", "kind", "dir", "doc", "size", "count",
                           "elem", "max", "function", "c-type", "lifetime",
                           "parent", "learn-params", "extent", "kernels-from", "nul-terminated"),
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
        self.extent = node.get("extent")
        self.extent_ast = None  # size tree of the device range this value names
        self.sizes_extent = False   # an output another output's extent is computed from
        self.node, self.path = node, path
        self.type = None       # CType for typed params
        self.elem = None       # CType for typed buffers
        self.size_c = None     # C expression (client side)
        self.index = 0         # position
        self.out_bit = None    # bit in hdr.present for outputs

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
        return self.kind is None and self.dir == "in"

    @property
    def is_handle(self):
        return self.type is not None and self.type.kind == "handle"

    @property
    def on_wire(self):
        return self.kind in ("buffer", "string", "kernel-params", "launch-extra") or self.kind is None

    @property
    def c_type(self):
        """The parameter's C type in the public prototype."""
        if self.kind in ("null-only", "local-out"):
            return self.c_type_override
        if self.kind == "string" or self.from_file:
            return "const char *"
        if self.kind in ("kernel-params", "launch-extra"):
            return "void **"
        if self.kind == "buffer":
            base = self.elem.name if self.elem else "void"
            return f"const {base} *" if self.dir == "in" else f"{base} *"
        base = self.type.name
        return f"{base} *" if self.dir in ("out", "inout") else base

    @property
    def plain_c_type(self):
        """The parameter's type in lakeD's vendor table (no vendor header needed)."""
        if self.kind in ("null-only", "local-out"):
            return "void *"
        if self.kind == "string":
            return "const char *"
        if self.kind in ("kernel-params", "launch-extra"):
            return "void **"
        if self.kind == "buffer":
            base = self.elem.plain if self.elem else "void"
            return f"const {base} *" if self.dir == "in" else f"{base} *"
        base = self.type.plain
        if self.dir in ("out", "inout"):
            return base + ("*" if base.endswith("*") else " *")
        return base

    @property
    def wire_type(self):
        if self.kind in ("buffer", "string", "kernel-params", "launch-extra"):
            return "struct lake_buf_ref"
        return self.type.wire


class Function:
    def __init__(self, spec, node, path):
        self.spec, self.line, self.node, self.path = spec, node.line, node, path
        self.name = _need(path, node, "name")
        if not IDENT.match(self.name):
            _fail(path, node, f"function name '{self.name}' is not a C identifier")
        _only(path, node, ("name", "vendor", "doc", "mode", "stream", "impl",
                           "params"), f"function '{self.name}'")
        self.doc = _need(path, node, "doc")
        self.vendor = node.get("vendor", self.name)
        self.mode = node.get("mode", "sync")
        self.stream = node.get("stream")
        self.impl = node.get("impl")
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

    def fail(self, msg):
        _fail(self.path, self.node, f"{self.name}: {msg}")

    def param(self, name):
        for p in self.params:
            if p.name == name:
                return p
        return None

    @property
    def remoted(self):
        return self.mode in ("sync", "async")

    @property
    def is_async(self):
        return self.mode == "async"

    @property
    def outs(self):
        return [p for p in self.params if p.is_out]

    @property
    def produces(self):
        """Does a successful call hand something back or change what the
        client holds: an output value or buffer, a resource created or
        destroyed, a reference taken or dropped?  Such a call's own result is
        never replaced by an earlier async call's deferred error."""
        return bool(self.outs) or self.learns is not None or any(
            (p.kind == "buffer" and p.dir != "in") or p.lifetime is not None
            for p in self.params)

    @property
    def ranges(self):
        """Input device addresses with the extent each call touches."""
        return [p for p in self.params if p.dir == "in" and p.extent_ast is not None]

    @property
    def wire_params(self):
        return [p for p in self.params if p.on_wire]

    @property
    def buffers(self):
        return [p for p in self.params if p.kind == "buffer"]

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
        _only(path, root, ("spec", "doc", "vendor", "result", "daemon", "types", "functions"),
              "the spec's top level")
        self.name = _need(path, root, "spec")
        stem = os.path.splitext(os.path.basename(path))[0]
        if self.name != stem:
            _fail(path, root, f"spec name '{self.name}' must match the file name '{stem}'")
        if not IDENT.match(self.name):
            _fail(path, root, f"spec name '{self.name}' is not a C identifier")
        self.doc = _need(path, root, "doc")
        vendor = _need(path, root, "vendor", dict)
        _only(path, vendor, ("header", "library"), "vendor")
        self.header = _need(path, vendor, "header")
        self.library = _need(path, vendor, "library")
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
        self.types = []
        self.functions = []
        for node in _need(path, root, "types", list):
            self.types.append(self._load_type(node))
        for node in _need(path, root, "functions", list):
            if not isinstance(node, dict):
                _fail(path, root, "each function must be a mapping")
            self.functions.append(Function(self, node, path))

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
                           "destroy"), f"type '{name}'")
        doc = _need(path, node, "doc")
        t = CType(name, kind, spec=self, doc=doc, destroy=node.get("destroy"), line=node.line)
        if kind == "scalar":
            t.c_type = _need(path, node, "c-type")
            if t.c_type not in BUILTIN_SCALARS:
                _fail(path, node, f"type '{name}': unknown c-type '{t.c_type}'")
        else:
            t.tag = _need(path, node, "tag")
        if kind == "enum":
            vals = []
            for v in _need(path, node, "values", list):
                if not isinstance(v, dict):
                    _fail(path, node, f"enum '{name}': each value must be a mapping")
                _only(path, v, ("name", "value", "doc"), f"a value of enum '{name}'")
                vname = _need(path, v, "name")
                if "value" not in v or not isinstance(v["value"], int) or isinstance(v["value"], bool):
                    _fail(path, v, f"enum '{name}': value '{vname}' needs an integer 'value'")
                if any(x["name"] == vname for x in vals):
                    _fail(path, v, f"enum '{name}': duplicate value '{vname}'")
                vals.append({"name": vname, "value": v["value"],
                             "doc": str(v.get("doc", "")), "line": v.line})
            t.values = vals
        if kind == "struct":
            fields = []
            for fnode in _need(path, node, "fields", list):
                if not isinstance(fnode, dict):
                    _fail(path, node, f"struct '{name}': each field must be a mapping")
                _only(path, fnode, ("name", "type", "doc"), f"a field of struct '{name}'")
                fname = _need(path, fnode, "name")
                ftype = _need(path, fnode, "type")
                if ftype not in BUILTIN_SCALARS:
                    _fail(path, fnode, f"struct '{name}': field '{fname}' has unknown type "
                                       f"'{ftype}' (struct fields are built-in scalars)")
                fields.append({"name": fname, "type": ftype, "wire": BUILTIN_SCALARS[ftype]})
            t.fields = fields
        if kind in ("enum", "struct", "opaque") and t.destroy:
            _fail(path, node, f"type '{name}': only scalars and handles can have 'destroy'")
        return t


class SpecSet:
    """All the specs of one build, checked together (API ids are global)."""

    def __init__(self, paths):
        if not paths:
            raise SpecError("lakegen", 0, "no spec files given")
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
        seen = {}
        for s in self.specs:
            for f in s.functions:
                if f.name in seen:
                    f.fail(f"duplicate function (first defined at {seen[f.name]})")
                seen[f.name] = f"{s.path}:{f.line}"
        next_id = 1
        for s in self.specs:
            self._check_spec(s)
            for f in s.functions:
                if f.remoted:
                    f.api_id = next_id
                    next_id += 1
        self.max_api = next_id - 1
        self.hash = self._hash()

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
        fnames = {f.name: f for sp in self.specs for f in sp.functions}
        for t in s.types:
            if t.destroy:
                fn = fnames.get(t.destroy)
                if fn is None:
                    _fail(s.path, t, f"type '{t.name}': destroy function '{t.destroy}' is not in a spec")
                t.destroy_fn = fn
        for f in s.functions:
            self._check_function(s, f)
        if rt.values and {v["name"]: v["value"] for v in rt.values}[s.success] != 0:
            _fail(s.path, s.result_node, "the success value must be 0")
        helpers = {}
        for key, fname in s.daemon.items():
            if fname is None:
                helpers[key] = None
                continue
            fn = fnames.get(fname)
            if fn is None or fn.spec is not s:
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
        if any(f.is_async and f.buffers for f in s.functions) and sync is None:
            _fail(s.path, s.raw, "async functions with buffers need a daemon stream-sync function")
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
        s.releasers = {}
        for f in s.functions:
            for p in f.params:
                if p.lifetime == "releases":
                    if p.type.name in s.releasers:
                        p.fail(f"a second function releases {p.type.name} references "
                               f"(first: {s.releasers[p.type.name].name})")
                    if len(f.params) != 1 or not f.remoted:
                        p.fail("a releasing function must be remoted and take only the reference")
                    s.releasers[p.type.name] = f
        for f in s.functions:
            for p in f.params:
                if p.lifetime == "retains" and p.type.name not in s.releasers:
                    p.fail(f"nothing releases {p.type.name} references: give one function "
                           f"'lifetime: releases'")
        for t in s.types:
            if t.destroy_fn:
                dfn = t.destroy_fn
                if len(dfn.params) != 1 or dfn.params[0].type is not t or not dfn.remoted:
                    _fail(s.path, t, f"type '{t.name}': destroy function '{t.destroy}' must be "
                                     f"a remoted function taking exactly one {t.name}")

    def _check_function(self, s, f):
        if f.mode not in MODES:
            f.fail(f"unknown mode '{f.mode}' (known: {', '.join(MODES)})")
        if f.mode == "local":
            if f.impl not in LOCAL_IMPLS:
                f.fail(f"a local function needs 'impl' (one of: {', '.join(LOCAL_IMPLS)})")
        elif f.impl is not None:
            f.fail("'impl' is only for local functions")
        names = [p.name for p in f.params]
        for p in f.params:      # resolve types first: size expressions look ahead
            if p.kind is None and p.type_name is not None:
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
            if f.outs:
                f.fail("an async function cannot have outputs")
            if not f.stream:
                f.fail("an async function needs 'stream' (its stream parameter)")
        if f.stream is not None:
            sp = f.param(f.stream)
            if sp is None or not sp.is_handle or sp.dir != "in":
                f.fail(f"stream '{f.stream}' is not an input handle parameter")
            if not f.is_async:
                f.fail("'stream' is only for async functions")
        for p in f.params:
            if p.kind == "local-out" and f.mode != "local":
                p.fail("kind 'local-out' is only for local functions")
        if f.mode == "local":
            for p in f.params:
                if p.kind not in (None, "local-out") or (p.kind is None and p.dir != "in"):
                    p.fail("a local function takes typed inputs and local-out parameters")

    def _check_param(self, s, f, p):
        if p.kind is not None and p.kind not in PARAM_KINDS:
            p.fail(f"unknown kind '{p.kind}' (known: {', '.join(PARAM_KINDS)})")
        if p.kind is None:
            if p.type_name is None:
                p.fail("needs a 'type' or a 'kind'")
            t = self.types.get(p.type_name)
            if t is None:
                p.fail(f"unknown type '{p.type_name}'")
            if t.kind == "opaque":
                p.fail(f"type '{t.name}' is opaque: it can only be used behind a null-only pointer")
            if p.dir not in ("in", "out", "inout"):
                p.fail(f"unknown dir '{p.dir}' (in, out or inout)")
            p.type = t
            for field in ("size", "count", "elem", "max", "function", "c-type"):
                if p.node.get(field) is not None:
                    p.fail(f"'{field}' does not apply to a typed parameter")
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
                if et is None or et.kind not in ("scalar", "struct"):
                    p.fail(f"buffer elem '{p.elem_name}' must be a scalar or struct type")
                p.elem = et
            if (p.size is None) == (p.count is None):
                p.fail("a buffer needs exactly one of 'size' (bytes) or 'count' (elements)")
            if p.count is not None and p.elem is None:
                p.fail("'count' needs 'elem'")
            expr = p.size if p.size is not None else p.count
            p.size_ast = self._parse_size(f, p, str(expr))
        elif p.kind == "string":
            if not isinstance(p.max, int) or isinstance(p.max, bool) or not 2 <= p.max <= 4096:
                p.fail("a string needs 'max' between 2 and 4096 (bytes, NUL included)")
        elif p.kind == "kernel-params":
            fp = f.param(p.function) if p.function else None
            if fp is None or not fp.is_handle or fp.dir != "in":
                p.fail("'function' must name an input handle parameter")
        elif p.kind == "launch-extra":
            if not any(q.kind == "kernel-params" for q in f.params):
                p.fail("kind 'launch-extra' goes with a kernel-params parameter")
        elif p.kind in ("null-only", "local-out"):
            if not p.c_type_override or not p.c_type_override.strip().endswith("*"):
                p.fail(f"kind '{p.kind}' needs 'c-type', a pointer type")
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
            if p.lifetime == "creates" and p.dir != "out":
                p.fail("'lifetime: creates' applies to an output")
            if p.lifetime == "destroys" and p.dir != "in":
                p.fail("'lifetime: destroys' applies to an input")
        is_range = p.type is not None and p.type.kind == "scalar" and p.type.tracked
        if p.parent is not None:
            pp = f.param(p.parent)
            if not ((p.is_handle or is_range) and p.dir == "out"):
                p.fail("'parent' applies to an output handle or tracked scalar")
            if pp is None or not pp.is_handle or pp.dir != "in":
                p.fail(f"parent '{p.parent}' is not an input handle parameter")
        # A tracked scalar (a device address) names a range of bytes: lakeD
        # checks every one a client passes against that client's own ranges.
        if p.extent is not None:
            if not is_range:
                p.fail("'extent' applies to tracked scalars (types with 'destroy', e.g. CUdeviceptr)")
            if p.lifetime == "destroys":
                p.fail("a destroyed value names a whole range: it takes no 'extent'")
            if p.dir == "out" and p.lifetime != "creates" and p.parent is None:
                p.fail("an output range needs 'lifetime: creates' or a 'parent' that owns it")
            p.extent_ast = self._parse_size(f, p, str(p.extent), allow_outs=p.dir == "out")
        elif is_range and p.lifetime != "destroys":
            p.fail(f"a {p.type.name} needs 'extent' (the bytes it spans from this address), "
                   f"or 'lifetime: destroys'")
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
        for b in f.buffers:
            if b.dir == "in":
                continue
            for q in derefs(b.size_ast):
                if q.capacity_of is not None and q.capacity_of is not b:
                    q.fail("counts two output buffers")
                q.capacity_of = b

    def _parse_size(self, f, p, text, allow_outs=False):
        """Parses a size expression into a small tree; rejects anything unsafe.

        allow_outs: the expression may name output scalars (an extent that is
        only known after the call, e.g. pitch * height)."""
        # '*p' (the input value of an inout scalar) is a unary '*', which Python
        # lacks: each unary '*name' becomes '__deref_name' before parsing.
        try:
            tree = ast.parse(_rewrite_deref(text), mode="eval").body
        except SyntaxError:
            p.fail(f"bad size expression '{text}'")

        def walk(n):
            if isinstance(n, ast.Name) and n.id.startswith("__deref_"):
                q = f.param(n.id[len("__deref_"):])
                if q is None or not q.is_inout or q.type.kind != "scalar":
                    p.fail(f"bad size expression '{text}': '*{n.id[8:]}' needs an inout scalar")
                return ("deref", q)
            if isinstance(n, ast.Constant) and isinstance(n.value, int) and not isinstance(n.value, bool):
                if n.value < 0:
                    p.fail(f"bad size expression '{text}': negative constant")
                return ("const", n.value)
            if isinstance(n, ast.Name):
                q = f.param(n.id)
                if q is None:
                    p.fail(f"bad size expression '{text}': unknown parameter '{n.id}'")
                if allow_outs and q.kind is None and q.dir == "out" and q is not p \
                        and q.type.kind == "scalar" and not q.type.tracked:
                    q.sizes_extent = True   # lakeD always asks the vendor for it
                    return ("out", q)
                if q.kind is not None or q.type.kind not in ("scalar", "enum") or q.dir != "in":
                    p.fail(f"bad size expression '{text}': '{n.id}' is not an input scalar")
                return ("param", q)
            if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub, ast.Mult)):
                op = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}[type(n.op)]
                return (op, walk(n.left), walk(n.right))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and not n.keywords:
                if n.func.id == "sizeof" and len(n.args) == 1 and isinstance(n.args[0], ast.Name):
                    t = self.types.get(n.args[0].id)
                    if t is None or t.kind not in ("scalar", "struct", "enum"):
                        p.fail(f"bad size expression '{text}': sizeof of unknown type '{n.args[0].id}'")
                    return ("sizeof", t)
                if n.func.id in SIZE_FUNCTIONS and len(n.args) == 1 and isinstance(n.args[0], ast.Name):
                    q = f.param(n.args[0].id)
                    if q is None or q.kind != "buffer":
                        p.fail(f"bad size expression '{text}': {n.func.id}() takes a buffer parameter")
                    return ("fn", SIZE_FUNCTIONS[n.func.id], q)
                p.fail(f"bad size expression '{text}': unknown function '{n.func.id}'")
            if isinstance(n, ast.Starred) or (isinstance(n, ast.UnaryOp)):
                pass
            p.fail(f"bad size expression '{text}': only parameters, integers, + - *, "
                   f"sizeof(T), *p and the known size functions are allowed")

        node = walk(tree)
        if p.count is not None:
            node = ("mul", node, ("sizeof", p.elem))
        return node

    def _hash(self):
        """A hash of everything that shapes the wire: both sides must agree on it."""
        canon = json.dumps([s.raw for s in self.specs], sort_keys=True, default=str)
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


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


def size_c(node, side):
    """Renders a size tree as C that sets `ovf` on overflow.

    side is "client" (values are the stub's parameters) or "server" (values are
    fields of the unpacked argument struct `a` and resolved buffers)."""
    kind = node[0]
    if kind == "const":
        return f"(__u64){node[1]}ULL"
    if kind == "param":
        p = node[1]
        v = p.name if side == "client" else f"a->{p.name}"
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
    op = {"add": "lake_sz_add", "sub": "lake_sz_sub", "mul": "lake_sz_mul"}[kind]
    return f"{op}(&ovf, {size_c(node[1], side)}, {size_c(node[2], side)})"
