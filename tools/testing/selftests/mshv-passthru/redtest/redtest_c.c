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
#include <linux/slab.h>

#include "redtest.h"

void mshv_pt_redtest_ubsan(void)
{
	int shift = 40;
	int val = 1;

	OPTIMIZER_HIDE_VAR(shift);
	val <<= shift;
	OPTIMIZER_HIDE_VAR(val);
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
