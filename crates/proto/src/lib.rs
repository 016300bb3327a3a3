//! The contracts between pms services, generated from the `.proto` files under `proto/` at
//! the workspace root: gRPC services (`PatientDirectory`, `BillingService`) and the event
//! messages with their envelope (docs/events.md).

#![allow(clippy::all, clippy::unwrap_used)]

pub mod events {
    pub mod v1 {
        tonic::include_proto!("pms.events.v1");
    }
}

pub mod patients {
    pub mod v1 {
        tonic::include_proto!("pms.patients.v1");
    }
}

pub mod billing {
    pub mod v1 {
        tonic::include_proto!("pms.billing.v1");
    }
}

pub mod appointments {
    pub mod v1 {
        tonic::include_proto!("pms.appointments.v1");
    }
}

/// Every message and service above, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pms_descriptor");

pub use prost::{self, Message};
pub use prost_types::Timestamp;
