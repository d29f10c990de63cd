/* SPDX-License-Identifier: GPL-2.0 */
#ifndef MSHV_PT_REDTEST_H
#define MSHV_PT_REDTEST_H

void mshv_pt_redtest_ubsan(void);
void mshv_pt_redtest_kasan(void);
void mshv_pt_redtest_rcu_stall(unsigned int seconds);

#endif
