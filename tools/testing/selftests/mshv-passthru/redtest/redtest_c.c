// SPDX-License-Identifier: GPL-2.0
/*
 * The provocations Rust code cannot make: UBSAN instruments only C, and the
 * KASAN and RCU-stall triggers need C-only helpers. Modelled on
 * lib/test_ubsan.c and mm/kasan/kasan_test_c.c. Test-only.
 */

#include <linux/compiler.h>
#include <asm/rwonce.h>
#include <linux/delay.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/slab.h>

#include "redtest.h"

/* UBSAN_BOUNDS (the test kernel has no UBSAN_SHIFT). Inside the struct, so KASAN stays quiet. */
void mshv_pt_redtest_ubsan(void)
{
	struct {
		int a[4];
		int b;
	} s = {};
	int idx = 4;

	OPTIMIZER_HIDE_VAR(idx);
	pr_info("mshv_pt_redtest: ubsan read %d\n", s.a[idx]);
}

void mshv_pt_redtest_kasan(void)
{
	char *p = kmalloc(16, GFP_KERNEL);

	if (!p)
		return;
	OPTIMIZER_HIDE_VAR(p);
	WRITE_ONCE(p[16], 'x');
	kfree(p);
}

void mshv_pt_redtest_rcu_stall(unsigned int seconds)
{
	unsigned int i;

	preempt_disable();
	for (i = 0; i < seconds * 1000; i++)
		mdelay(1);
	preempt_enable();
}
