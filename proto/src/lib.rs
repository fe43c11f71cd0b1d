//! The gRPC contracts of the platform: `billing.v1` and `executor.v1`, generated from `proto/`.
//!
//! Nothing but generated code, the file descriptor set used by the reflection services, and the few types
//! every service shares live here: the typed ids of what the contracts name ([`ids`]), how a call carries
//! its credential ([`credentials`]), what names an execution ([`labels`]), why billing-svc refuses one
//! ([`refusal`]) and how an execution ended ([`ending`]), each with its wire conversions. Every other
//! conversion between wire and domain types belongs to each service's `grpc` module.

pub mod credentials;
pub mod ending;
pub mod ids;
pub mod labels;
pub mod refusal;

/// `billing.v1`: AdminService, AccountService and MeteringService.
#[allow(clippy::large_enum_variant)]
pub mod billing {
    pub mod v1 {
        tonic::include_proto!("billing.v1");
    }
}

/// `executor.v1`: ExecutorService.
#[allow(clippy::large_enum_variant)]
pub mod executor {
    pub mod v1 {
        tonic::include_proto!("executor.v1");
    }
}

/// The encoded `FileDescriptorSet` of `billing.v1` (with its imports), for billing-svc's reflection services.
pub const BILLING_FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("billing");

/// The encoded `FileDescriptorSet` of `executor.v1` (with its imports), for executor-svc's reflection services.
pub const EXECUTOR_FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("executor");
