#[test]
fn known_vector() {
    assert_eq!(leadflow_core::hash::sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
