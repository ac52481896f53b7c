/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The kernel's lake_kernel.h names, from liblake (same functions). */
#include "liblake.h"
