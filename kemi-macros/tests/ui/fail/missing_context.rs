use kemi_runtime::kemi;

#[kemi(name = "nothing")]
fn nothing() -> i32 {
    1
}

fn main() {}
