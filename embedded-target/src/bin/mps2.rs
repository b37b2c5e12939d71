//! uftp receiver firmware for QEMU's MPS2 boards with the LAN9118 (`mps2-an500`, Cortex-M7;
//! `mps2-an386`, Cortex-M4): log lines on UART0, update images in RAM, the address from
//! `UFTP_ADDRESS` at build time (or DHCP). `cargo xtask qemu` builds it and runs it under
//! `qemu-system-arm`; see `embedded_target::mps2`.
#![no_std]
#![no_main]

use cortex_m_rt::exception;
use embassy_executor::Spawner;
use embassy_net::{Runner, StackResources};
use embedded_target::mps2::{self, BoardStorage, Device};
use static_cell::StaticCell;

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn receive_task(
    stack: embassy_net::Stack<'static>,
    storage: &'static mut BoardStorage,
    seed: [u8; 32],
) -> ! {
    mps2::run(stack, storage, seed).await
}

#[exception]
fn SysTick() {
    mps2::on_tick();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    mps2::panic(info)
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let Some(p) = mps2::Peripherals::take() else {
        panic!("peripherals taken twice")
    };
    let Some(core) = cortex_m::Peripherals::take() else {
        panic!("core peripherals taken twice")
    };
    mps2::init_log(mps2::Uart::new(p.uart0), log::LevelFilter::Info);
    mps2::start_time(core.SYST);
    log::info!("uftp-rs firmware, {}", p.board);

    let (device, seed) = mps2::ethernet(p.lan9118);
    let mac = device.mac_address();
    log::info!(
        "LAN9118 up, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    let receiver_seed: [u8; 32] = seed[..32].try_into().unwrap_or([0; 32]);
    let stack_seed = u64::from_le_bytes(seed[32..].try_into().unwrap_or([0; 8]));

    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        mps2::net_config(),
        RESOURCES.init(StackResources::new()),
        stack_seed,
    );
    let storage = mps2::storage();
    match net_task(runner) {
        Ok(task) => spawner.spawn(task),
        Err(e) => panic!("net task: {e:?}"),
    }
    match receive_task(stack, storage, receiver_seed) {
        Ok(task) => spawner.spawn(task),
        Err(e) => panic!("receive task: {e:?}"),
    }
}
