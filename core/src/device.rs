//! Run-time choice of the compute device.
//!
//! burn 0.22 tensors carry their backend in the device, so one binary serves every backend it
//! was compiled with. `flex` (pure Rust, nothing to install) is the default; `tch` (libtorch
//! 2.9.0) is an opt-in cargo feature. burn-ndarray (40-200x slower on these convolutions) and
//! burn-cpu (does not build offline) are deliberately not offered.

use anyhow::{Result, bail};
use burn::tensor::Device;
use std::fmt;
use std::str::FromStr;

/// A compute device named on the command line (`--device flex|tch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// burn-flex: pure-Rust CPU backend (default).
    Flex,
    /// burn-tch: libtorch CPU (cargo feature `tch`).
    Tch,
}

impl DeviceChoice {
    /// The inner (non-autodiff) device.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceChoice::Flex => Ok(Device::flex()),
            DeviceChoice::Tch => tch_device(),
        }
    }

    /// The same device with gradient tracking enabled.
    pub fn autodiff(self) -> Result<Device> {
        Ok(self.device()?.autodiff())
    }

    /// Names of the devices compiled into this binary.
    pub fn available() -> &'static [&'static str] {
        if cfg!(feature = "tch") {
            &["flex", "tch"]
        } else {
            &["flex"]
        }
    }
}

#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch is deprecated upstream but is the fastest CPU path here.
fn tch_device() -> Result<Device> {
    Ok(Device::libtorch())
}

#[cfg(not(feature = "tch"))]
fn tch_device() -> Result<Device> {
    bail!(
        "--device tch: this binary was built without the `tch` feature; rebuild with \
         `LIBTORCH_USE_PYTORCH=1 cargo build --features tch` (needs PyTorch 2.9.0)"
    )
}

impl FromStr for DeviceChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "flex" => Ok(DeviceChoice::Flex),
            "tch" | "libtorch" => Ok(DeviceChoice::Tch),
            other => bail!(
                "--device {other}: unknown device (choose one of: {})",
                DeviceChoice::available().join(", ")
            ),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Flex => "flex",
            DeviceChoice::Tch => "tch",
        })
    }
}
