use kemi_runtime::kemi;

#[kemi]
struct Export;

#[kemi(module = "m")]
static VALUE: i32 = 1;

fn main() {}
