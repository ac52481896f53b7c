// SPDX-License-Identifier: GPL-2.0
/*
 * lake_app_kmod.c - the kit's kernel-module glue: module parameters, one
 * app per model of the bundle (lake_app_this), and the run interface in
 * debugfs:
 *
 *   /sys/kernel/debug/<module>/run      write a command, e.g.
 *                                       "bench app=linnos+0 mode=gpu batch=1,2,4 iters=200";
 *                                       the write returns when it is done
 *                                       (-EINVAL: bad command, -EIO: a
 *                                       check failed or a path errored)
 *   /sys/kernel/debug/<module>/results  the last command's results (CSV)
 *
 * The commands are lake_app_run()'s (apps/common/lake_app.h).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/uaccess.h>
#include "lake_app.h"

static bool gpu = true;
module_param(gpu, bool, 0444);
MODULE_PARM_DESC(gpu, "Set the GPU path up at load (default 1)");

static int crossover = -1;
module_param(crossover, int, 0444);
MODULE_PARM_DESC(crossover, "Auto mode: the GPU from this batch size up (0: never); -1 (default): measured at load");

static char *xfer = "auto";
module_param(xfer, charp, 0444);
MODULE_PARM_DESC(xfer, "GPU transfers: auto (measured at load), copy, mapped, poll or copy_poll");

static char *variant;
module_param(variant, charp, 0444);
MODULE_PARM_DESC(variant, "The GPU variant (default: measured at load, per batch size)");

static char *weights;
module_param(weights, charp, 0444);
MODULE_PARM_DESC(weights, "A weights file to load instead of the built-in weights");

static char *models;
module_param(models, charp, 0444);
MODULE_PARM_DESC(models, "The models to set up, comma-separated (default: all)");

#define LAKE_APP_MOD_MAX 8
#define LAKE_APP_CMD_MAX 512

static struct lake_app *lake_app_mod_apps[LAKE_APP_MOD_MAX];
static unsigned int lake_app_mod_n;
static struct dentry *lake_app_mod_dir;
static DEFINE_MUTEX(lake_app_mod_lock);	/* one command at a time; guards the results */
static struct lake_app_text lake_app_mod_results;

static ssize_t lake_app_mod_run_write(struct file *file, const char __user *ubuf, size_t len,
				      loff_t *ppos)
{
	char *cmd;
	int ret;

	if (!len || len >= LAKE_APP_CMD_MAX)
		return -EINVAL;
	cmd = memdup_user_nul(ubuf, len);
	if (IS_ERR(cmd))
		return PTR_ERR(cmd);
	mutex_lock(&lake_app_mod_lock);
	lake_app_text_free(&lake_app_mod_results);
	ret = lake_app_run(lake_app_mod_apps, lake_app_mod_n, cmd, &lake_app_mod_results);
	mutex_unlock(&lake_app_mod_lock);
	kfree(cmd);
	return ret ? ret : len;
}

static ssize_t lake_app_mod_results_read(struct file *file, char __user *ubuf, size_t len,
					 loff_t *ppos)
{
	ssize_t n;

	mutex_lock(&lake_app_mod_lock);
	n = simple_read_from_buffer(ubuf, len, ppos, lake_app_mod_results.buf,
				    lake_app_mod_results.len);
	mutex_unlock(&lake_app_mod_lock);
	return n;
}

static const struct file_operations lake_app_mod_run_fops = {
	.owner = THIS_MODULE,
	.write = lake_app_mod_run_write,
	.llseek = noop_llseek,
};

static const struct file_operations lake_app_mod_results_fops = {
	.owner = THIS_MODULE,
	.read = lake_app_mod_results_read,
	.llseek = default_llseek,
};

static void lake_app_mod_destroy(void)
{
	while (lake_app_mod_n)
		lake_app_destroy(lake_app_mod_apps[--lake_app_mod_n]);
	lake_app_text_free(&lake_app_mod_results);
}

static int __init lake_app_mod_init(void)
{
	const struct lake_app_bundle *b = &lake_app_this;
	struct lake_app_opts opts = LAKE_APP_OPTS_DEFAULT;
	unsigned int i;
	int err;

	opts.gpu = gpu;
	opts.crossover = crossover;
	opts.weights = weights && *weights ? weights : NULL;
	opts.variant = variant && *variant ? variant : NULL;
	err = lake_app_parse_xfer(xfer);
	if (err < 0) {
		pr_err("xfer=%s: must be auto, copy, mapped, poll or copy_poll\n", xfer);
		return -EINVAL;
	}
	opts.xfer = err;
	if (crossover < -1) {
		pr_err("crossover=%d: must be -1 (measure), 0 (never the GPU) or a batch size\n",
		       crossover);
		return -EINVAL;
	}
	for (i = 0; i < b->nmodels && i < LAKE_APP_MOD_MAX; i++) {
		struct lake_app *a;

		if (!lake_app_selected(models, b->models[i]->name))
			continue;
		a = lake_app_create(b, b->models[i], &opts, &err);
		if (!a) {
			pr_err("%s: cannot be set up (%d)\n", b->models[i]->name, err);
			lake_app_mod_destroy();
			return err;
		}
		lake_app_mod_apps[lake_app_mod_n++] = a;
	}
	lake_app_mod_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("run", 0200, lake_app_mod_dir, NULL, &lake_app_mod_run_fops);
	debugfs_create_file("results", 0400, lake_app_mod_dir, NULL, &lake_app_mod_results_fops);
	if (!lake_app_mod_n) {
		pr_err("models=%s: none of this module's models\n", models);
		return -EINVAL;
	}
	pr_info("ready: %u model%s; commands to /sys/kernel/debug/%s/run\n", lake_app_mod_n,
		lake_app_mod_n == 1 ? "" : "s", KBUILD_MODNAME);
	return 0;
}

static void __exit lake_app_mod_exit(void)
{
	debugfs_remove_recursive(lake_app_mod_dir);
	lake_app_mod_destroy();
	pr_info("unloaded\n");
}

module_init(lake_app_mod_init);
module_exit(lake_app_mod_exit);
MODULE_LICENSE("GPL");
