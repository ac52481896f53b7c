// SPDX-License-Identifier: GPL-2.0
/*
 * lake_vm_hello - the smallest module that proves the LAKE VM harness works.
 *
 * test/vm/selftest.sh loads it inside the VM and checks its greeting in the
 * kernel log; with warn=1 it WARNs at load, which the harness must report
 * as a failure.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>

static char *greeting = "hello";
module_param(greeting, charp, 0444);
MODULE_PARM_DESC(greeting, "word printed at load (default \"hello\")");

static bool warn;
module_param(warn, bool, 0444);
MODULE_PARM_DESC(warn, "WARN_ON(1) at load, to prove the harness catches kernel warnings");

static int __init lake_vm_hello_init(void)
{
	pr_info("%s from the LAKE test VM\n", greeting);
	WARN_ON(warn);
	return 0;
}

static void __exit lake_vm_hello_exit(void)
{
	pr_info("goodbye\n");
}

module_init(lake_vm_hello_init);
module_exit(lake_vm_hello_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("LAKE project");
MODULE_DESCRIPTION("LAKE VM test harness self-test module");
