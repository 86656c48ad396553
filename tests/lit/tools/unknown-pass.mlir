// Unknown and misplaced passes are reported before any input is processed; exit status 1.
// RUN: not wpk-opt --wpk-no-such-pass %s 2>&1 | FileCheck %s --check-prefix=WPK
// RUN: not wpk-opt --pass-pipeline='builtin.module(wpk-no-such-pass)' %s 2>&1 | FileCheck %s --check-prefix=WPK
// RUN: not wpk-opt --no-such-pass %s 2>&1 | FileCheck %s --check-prefix=UPSTREAM
// RUN: not wpk-opt --pass-pipeline='builtin.module(canonicalize,no-such-pass)' %s 2>&1 | FileCheck %s --check-prefix=UPSTREAM
// RUN: not wpk-opt --pass-pipeline='builtin.module(canonicalize{no-such-option=1})' %s 2>&1 | FileCheck %s --check-prefix=OPTION
// RUN: not wpk-opt --pass-pipeline='builtin.module(func.func(wpk-verify))' %s 2>&1 | FileCheck %s --check-prefix=NESTED
// RUN: not wpk-opt --pass-pipeline='builtin.module(wpk-verify{x=1})' %s 2>&1 | FileCheck %s --check-prefix=WPK-OPTION
// RUN: not wpk-opt --pass-pipeline='builtin.module(cse' %s 2>&1 | FileCheck %s --check-prefix=SYNTAX
// RUN: not wpk-opt --pass-pipeline='builtin.module(cse)' --canonicalize %s 2>&1 | FileCheck %s --check-prefix=MIXED

// WPK: wpk-opt: error: unknown wpk pass 'wpk-no-such-pass'; known wpk passes: wpk-apply-schedule, wpk-cleanup, wpk-convert-layout, wpk-fold-batchnorm, wpk-fold-constants, wpk-fold-transpose, wpk-fuse, wpk-fuse-attention, wpk-fuse-layernorm, wpk-lower-to-linalg, wpk-outline-weights, wpk-verify; pipeline aliases: wpk-graph-opt, wpk-lower; every upstream MLIR pass (as accepted by mlir-opt) is accepted too
// WPK-NOT: Traceback

// UPSTREAM: wpk-opt: error: invalid pass pipeline element 'no-such-pass': 'no-such-pass' does not refer to a registered pass or pass pipeline
// UPSTREAM-NEXT: known wpk passes: wpk-apply-schedule, wpk-cleanup, {{.*}}, wpk-verify; {{.*}} every upstream MLIR pass (as accepted by mlir-opt) is accepted too

// OPTION: wpk-opt: error: invalid pass pipeline element 'canonicalize{no-such-option=1}': {{.*}}no such option no-such-option

// NESTED: wpk-opt: error: wpk passes run on the whole module and must be top-level elements of builtin.module(...): 'wpk-verify' is nested in 'func.func(...)'

// WPK-OPTION: wpk-opt: error: wpk pass 'wpk-verify' takes no options, got '{x=1}'

// SYNTAX: wpk-opt: error: invalid pass pipeline: expected ',' or ')'

// MIXED: wpk-opt: error: '--pass-pipeline' option can't be used with individual pass options

func.func @f() {
  return
}
