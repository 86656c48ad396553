// A pass that finds nothing to act on warns (and the run goes on): the schedules need linalg,
// the wpk passes need wpk ops.
// RUN: wpk-opt %s --wpk-apply-schedule 2>&1 | FileCheck %s --check-prefix=SCHEDULE
// RUN: wpk-opt %s --wpk-lower --wpk-fuse 2>&1 | FileCheck %s --check-prefix=LOWERED
// RUN: wpk-opt %s --split-input-file --verify-diagnostics --wpk-apply-schedule

// SCHEDULE: warning: wpk-apply-schedule: no linalg ops to schedule
// SCHEDULE: "wpk.relu"
// LOWERED-NOT: warning: wpk-lower
// LOWERED: warning: wpk-fuse: no wpk ops to fuse
// LOWERED: linalg.generic

// The warning is at the module's location.
// expected-warning @below {{wpk-apply-schedule: no linalg ops to schedule}}
module {
  func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %y = "wpk.relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    return %y : tensor<2x3xf32>
  }
}
