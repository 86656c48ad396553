// Configurations wpk-apply-schedule rejects, each with a one-line error naming the file, the
// kernel, the knob and the reason, and exit status 1: an unknown knob, a value outside the
// knob's domain, a violated constraint, an unknown kernel, a config that is not an object,
// malformed JSON, a missing file, unknown pass options, a stage without target cuda.
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: echo '{"k0_matmul": {"tile_q": 4}}' > %t.knob.json
// RUN: not %{lower} --wpk-apply-schedule=%t.knob.json 2>&1 | FileCheck %s --check-prefix=KNOB
// RUN: echo '{"kernels": {"matmul": {"tile_m": 5}}}' > %t.domain.json
// RUN: not %{lower} --wpk-apply-schedule=%t.domain.json 2>&1 | FileCheck %s --check-prefix=DOMAIN
// RUN: echo '{"k0_matmul": {"tile_m": 4, "reg_m": 8}}' > %t.constraint.json
// RUN: not %{lower} --wpk-apply-schedule=%t.constraint.json 2>&1 | FileCheck %s --check-prefix=CONSTRAINT
// RUN: echo '{"k7_conv": {"tile_f": 4}}' > %t.kernel.json
// RUN: not %{lower} --wpk-apply-schedule=%t.kernel.json 2>&1 | FileCheck %s --check-prefix=KERNEL
// RUN: echo '{"kernels": {"k0_matmul": 4}}' > %t.object.json
// RUN: not %{lower} --wpk-apply-schedule=%t.object.json 2>&1 | FileCheck %s --check-prefix=OBJECT
// RUN: echo '{"k0_matmul": ' > %t.json-error.json
// RUN: not %{lower} --wpk-apply-schedule=%t.json-error.json 2>&1 | FileCheck %s --check-prefix=JSON
// RUN: not %{lower} --wpk-apply-schedule=%t.missing.json 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not %{lower} --wpk-apply-schedule='config=%t.knob.json colour=red' 2>&1 | FileCheck %s --check-prefix=OPTION
// RUN: not %{lower} --wpk-apply-schedule --wpk-schedule-stage=nvvm 2>&1 | FileCheck %s --check-prefix=STAGE
// RUN: not %{lower} --wpk-print-schedules 2>&1 | FileCheck %s --check-prefix=NOPASS

// KNOB:       wpk-opt: error: wpk-apply-schedule ({{.*}}knob.json): kernel k0_matmul: knob 'tile_q': is not a knob of cpu.matmul (knobs: tile_m, {{.*}})
// KNOB-NOT:   Traceback
// DOMAIN:     wpk-opt: error: wpk-apply-schedule ({{.*}}domain.json): kernel k0_matmul: knob 'tile_m': value 5 is not in its domain [1, 2, 4, 8, 16, 32]
// CONSTRAINT: wpk-opt: error: wpk-apply-schedule ({{.*}}constraint.json): kernel k0_matmul: knob 'reg_m': reg_m=8 does not divide tile_m=4
// KERNEL:     wpk-opt: error: wpk-apply-schedule ({{.*}}kernel.json): kernel k7_conv: configuration: names no kernel of this module and no kernel kind (kernels: k0_matmul; kinds: matmul, conv, {{.*}})
// OBJECT:     wpk-opt: error: {{.*}}object.json: kernel k0_matmul: expected an object of knob values, got 4
// JSON:       wpk-opt: error: {{.*}}json-error.json: invalid JSON: Expecting value: line 2 column 1
// MISSING:    wpk-opt: error: wpk pass 'wpk-apply-schedule': cannot read schedule file '{{.*}}missing.json': No such file or directory
// OPTION:     wpk-opt: error: wpk pass 'wpk-apply-schedule': unknown option 'colour' (options: FILE or config=FILE, target=cpu|cuda, {{.*}})
// STAGE:      wpk-opt: error: wpk pass 'wpk-apply-schedule': default schedules: stage 'nvvm' needs target cuda
// NOPASS:     wpk-opt: error: --wpk-print-schedules needs --wpk-apply-schedule

func.func @main(%a: tensor<32x64xf32>, %b: tensor<64x48xf32>) -> tensor<32x48xf32> {
  %0 = "wpk.matmul"(%a, %b) : (tensor<32x64xf32>, tensor<64x48xf32>) -> tensor<32x48xf32>
  return %0 : tensor<32x48xf32>
}
