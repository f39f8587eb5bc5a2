//! The `sipd` binary: a thin wrapper around the library.

fn main() {
    let table = kemi_runtime::ExportTable::build(
        &kemi_runtime::__private::KEMI_EXPORTS,
        &[&modules::MODULES],
        &Default::default(),
    );
    println!("{table:?}");
}
