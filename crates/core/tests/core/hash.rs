#[test]
fn known_vector() {
    assert_eq!(leadflow_core::hash::sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn key64_is_the_leading_sixteen_hex_digits_of_sha256() {
    let k = leadflow_core::hash::key64(b"abc");
    assert_eq!(format!("{k:016x}"), "ba7816bf8f01cfea");
}
