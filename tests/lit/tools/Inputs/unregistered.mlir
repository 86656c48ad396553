func.func @f() {
  %0 = "mydialect.op"() : () -> i32
  return
}
