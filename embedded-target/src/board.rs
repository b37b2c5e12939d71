//! What the two STM32 boards share: their flash as embassy-boot partitions, the build-time
//! settings, and the receiver's start once the network is up. The board programs
//! (`src/bin/nucleo-*.rs`) add clocks, pins and the tasks.
//!
//! The build-time settings are [`build_config`](crate::build_config)'s.

use core::cell::RefCell;

use embassy_boot::{AlignedBuffer, BlockingFirmwareState, FirmwareUpdaterConfig};
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_net::Stack;
use embassy_stm32::flash::{Blocking, Flash, WRITE_SIZE};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use static_cell::StaticCell;

use crate::build_config;
use crate::flash_storage::FlashStorage;
use crate::fmt::Ip;
use crate::receive::{
    serve, wait_for_address, AllMulticast, FirmwareReceiver, NetBuffers, Settings,
};

/// Block-map bytes: 8192 blocks, far more than an image that fits the active partition needs.
pub const BLOCK_MAP: usize = 1024;

/// The chip's flash.
pub type BoardFlash = Flash<'static, Blocking>;
/// A partition of it.
pub type BoardPartition = BlockingPartition<'static, NoopRawMutex, BoardFlash>;
/// The firmware's storage: the DFU partition and embassy-boot's state partition.
pub type BoardStorage = FlashStorage<'static, BoardPartition, BoardPartition, BLOCK_MAP>;

/// The settings this firmware was built with (see [`build_config`](crate::build_config)).
pub fn settings() -> Settings {
    match build_config::settings() {
        Ok(s) => s,
        Err(e) => defmt::panic!("{=str}: bad or too many entries at {=str}", e.name, e.value),
    }
}

/// The network configuration this firmware was built with: DHCP, or `UFTP_ADDRESS`.
pub fn net_config() -> embassy_net::Config {
    match build_config::net_config() {
        Ok(c) => c,
        Err(e) => defmt::panic!("{=str}: bad value {=str}", e.name, e.value),
    }
}

/// A locally administered MAC address made from the chip's unique ID.
pub fn mac_address() -> [u8; 6] {
    let uid = embassy_stm32::uid::uid();
    let mut mac = [0x02, 0, 0, 0, 0, 0];
    for (i, b) in uid.iter().enumerate() {
        mac[1 + i % 5] ^= *b;
    }
    mac
}

/// The storage over the chip's flash, partitioned as `memory.x` says: the DFU partition for
/// images (at most the active partition's size: embassy-boot's DFU partition is one sector
/// larger) and the bootloader's state partition.
pub fn storage(flash: BoardFlash) -> &'static mut BoardStorage {
    static FLASH: StaticCell<Mutex<NoopRawMutex, RefCell<BoardFlash>>> = StaticCell::new();
    static ALIGNED: StaticCell<AlignedBuffer<WRITE_SIZE>> = StaticCell::new();
    static STORAGE: StaticCell<BoardStorage> = StaticCell::new();
    let flash = FLASH.init(Mutex::new(RefCell::new(flash)));
    let config = FirmwareUpdaterConfig::from_linkerfile_blocking(flash, flash);
    let aligned = ALIGNED.init(AlignedBuffer([0; WRITE_SIZE]));
    let state = BlockingFirmwareState::new(config.state, &mut aligned.0);
    let max_image = (config.dfu.capacity() - BoardFlash::ERASE_SIZE) as u32;
    match FlashStorage::new(config.dfu, state, max_image) {
        Ok(s) => STORAGE.init(s),
        Err(_) => defmt::panic!("memory.x: the DFU partition does not suit the storage"),
    }
}

/// Waits for an address, confirms this firmware to the bootloader (a swapped-in image that
/// gets this far has working Ethernet), then runs the receiver for good.
pub async fn run(stack: Stack<'static>, storage: &'static mut BoardStorage, seed: [u8; 32]) -> ! {
    static SETTINGS: StaticCell<Settings> = StaticCell::new();
    static RECEIVER: StaticCell<FirmwareReceiver> = StaticCell::new();
    static BUFFERS: StaticCell<NetBuffers> = StaticCell::new();
    let settings = SETTINGS.init(settings());
    let addr = wait_for_address(stack).await;
    info!("address {}", Ip(core::net::IpAddr::V4(addr)));
    match storage.boot_state() {
        Some(embassy_boot::State::Boot) => {}
        Some(_) => {
            if storage.confirm_boot().is_err() {
                warn!("cannot mark this firmware booted");
            } else {
                info!("new firmware confirmed");
            }
        }
        None => warn!("cannot read the bootloader state"),
    }
    let config = settings.receiver_config(u32::from(addr), seed);
    let rx = RECEIVER.init_with(|| FirmwareReceiver::new(config));
    let bufs = BUFFERS.init_with(NetBuffers::new);
    let err = serve(stack, settings, rx, storage, bufs, &AllMulticast).await;
    defmt::panic!("receiver stopped: {}", err)
}
