# SPDX-License-Identifier: GPL-2.0
#
# mshv-passthru out-of-tree modules.
#
#   make                     build every module against KDIR
#   make KDIR=<build dir>    build against another kernel (a real MSHV host)
#   make CLIPPY=1 W=e        the same with clippy and warnings as errors
#   make rustfmt / rustfmtcheck / checkpatch / clean
#
# KDIR defaults to the project's cached test kernel (scripts/kernel.sh test
# builds it). KDIR must be a full kernel build tree with CONFIG_RUST=y, built
# by the same rustc: see Documentation/building.rst.

MSHV_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mshv-passthru
KDIR ?= $(shell $(CURDIR)/scripts/kernel.sh --dir test 2>/dev/null)
LLVM ?= -19

export PATH := $(MSHV_CACHE)/tools/bin:$(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH ?= /usr/lib/llvm$(LLVM)/lib

RUST_SRCS = $(shell find $(CURDIR)/drivers $(CURDIR)/rust $(CURDIR)/samples \
		$(CURDIR)/tools/testing/selftests/mshv-passthru -name '*.rs' \
		-not -path '*/target/*' 2>/dev/null)
C_SRCS = $(shell find $(CURDIR)/drivers $(CURDIR)/tools/testing/selftests/mshv-passthru \
		-name '*.[ch]' -not -name '*.mod.c' 2>/dev/null)

all: modules

check-kdir:
	@test -n "$(KDIR)" -a -f "$(KDIR)/Makefile" || { \
	  echo "KDIR '$(KDIR)' is not a kernel build tree."; \
	  echo "Run scripts/kernel.sh test (or pass KDIR=<kernel build dir>)."; exit 1; }
	@test -f "$(KDIR)/rust/libkernel.rmeta" || { \
	  echo "KDIR '$(KDIR)' has no Rust metadata: CONFIG_RUST=y and a full build are needed."; \
	  exit 1; }

modules: check-kdir
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) modules

clean:
	@test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) clean
	rm -rf target

rustfmt:
	rustfmt --config-path $(CURDIR)/.rustfmt.toml $(RUST_SRCS)

rustfmtcheck:
	rustfmt --config-path $(CURDIR)/.rustfmt.toml --check $(RUST_SRCS)

checkpatch: check-kdir
	$(KDIR)/source/scripts/checkpatch.pl --no-tree --strict --show-types \
		--ignore FILE_PATH_CHANGES -f $(C_SRCS)
	@# The kernel patches as patches; the sign-off is the submitter's.
	$(KDIR)/source/scripts/checkpatch.pl --no-tree --strict --show-types \
		--ignore FILE_PATH_CHANGES,MISSING_SIGN_OFF $(wildcard $(CURDIR)/patches/linux-7.3/*.patch)

.PHONY: all check-kdir modules clean rustfmt rustfmtcheck checkpatch
