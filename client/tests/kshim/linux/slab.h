/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* See kernel.h: user-space stand-ins for the ktest round trip. */
#include <linux/kernel.h>
