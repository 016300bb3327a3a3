//! Generates the Rust types of ../../proto with `protoc` (Debian's `protobuf-compiler`,
//! installed by scripts/install-deps.sh; or the one `PROTOC` names), plus the descriptor set
//! that the gRPC servers' reflection serves.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "pms/events/v1/envelope.proto",
    "pms/patients/v1/patient.proto",
    "pms/patients/v1/events.proto",
    "pms/patients/v1/directory.proto",
    "pms/billing/v1/billing.proto",
    "pms/appointments/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("../../proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("pms_descriptor.bin"))
        .compile_protos(&files, &[root])?;
    Ok(())
}
