// SPDX-License-Identifier: GPL-2.0
/*
 * The provocations Rust code cannot make: UBSAN instruments only C, and the
 * KASAN and RCU-stall triggers need C-only helpers. Modelled on
 * lib/test_ubsan.c and mm/kasan/kasan_test_c.c. Test-only.
 */

#include <linux/compiler.h>
#include <asm/rwonce.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/rcupdate.h>
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

/*
 * Exported (GPL) by kernel/rcu/tree.c for rcutorture, declared only in the
 * private kernel/rcu/rcu.h.
 */
unsigned long rcu_get_gp_seq(void);

/* rcu_seq_state() of kernel/rcu/rcu.h: a grace period is in progress. */
#define REDTEST_RCU_GP_IN_PROGRESS(s)	((s) & 0x3)

/*
 * An RCU CPU stall, deterministically: the stall detector only reports a
 * grace period that is in progress, so with preemption off (no quiescent
 * state from this CPU) ask for a grace period and wait until one has
 * started after this point; it cannot end while this CPU spins. Then spin
 * @seconds of jiffies. The detector counts jiffies too (in the tick, which
 * keeps running here: interrupts stay on), and reports once
 * rcu_cpu_stall_timeout (the plan boots with 3 s) plus RCU_STALL_DELAY_DELTA
 * (5 s with CONFIG_PROVE_RCU, as in the test kernel) have passed since the
 * grace period started, so @seconds must exceed 8 with a margin. mdelay()
 * would count the TSC instead, which under a loaded TCG host runs ahead of
 * the guest's ticks. The grace-period kthread runs on the other CPU (the VM
 * has 2).
 */
void mshv_pt_redtest_rcu_stall(unsigned int seconds)
{
	unsigned long seq0, seq, end;
	unsigned int i;

	preempt_disable();
	seq0 = rcu_get_gp_seq();
	for (i = 0; i < 10000; i++) {
		seq = rcu_get_gp_seq();
		if (seq != seq0 && REDTEST_RCU_GP_IN_PROGRESS(seq))
			break;
		if (i % 100 == 0)
			start_poll_synchronize_rcu();
		mdelay(1);
	}
	if (i == 10000)
		pr_err("mshv_pt_redtest: no RCU grace period started in 10 s\n");
	end = jiffies + (unsigned long)seconds * HZ;
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
}
