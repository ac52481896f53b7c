# SPDX-License-Identifier: GPL-2.0 OR MIT
"""The command line of an app's binary weights-file tool (apps/kleio/kleio_weights.py,
apps/knn/knn_data.py): write a file from an .npz or from the app's default seed, or
convert a file back to an .npz."""
import argparse
import sys


def tool(prog, doc, what, from_npz, from_seed, to_npz, argv=None):
    """from_npz(path) and from_seed(seed) return the file's bytes; to_npz(data, out) writes
    the .npz.  They raise OSError, KeyError or ValueError with a message on bad input.
    Returns the exit status: 0, or 1 after a message naming the problem."""
    ap = argparse.ArgumentParser(prog=prog, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--npz", help="an .npz with the arrays")
    src.add_argument("--seed", type=int, help="write the app's default %s for this seed" % what)
    src.add_argument("--to-npz", metavar="FILE", help="convert a %s file back to .npz" % what)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    try:
        if args.to_npz:
            with open(args.to_npz, "rb") as f:
                to_npz(f.read(), args.output)
            return 0
        data = from_npz(args.npz) if args.npz else from_seed(args.seed)
        with open(args.output, "wb") as f:
            f.write(data)
    except (OSError, KeyError, ValueError) as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 1
    return 0
