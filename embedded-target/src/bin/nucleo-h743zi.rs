//! uftp receiver firmware for the NUCLEO-H743ZI: the board's LAN8742A PHY on RMII, DHCP (or
//! `UFTP_ADDRESS` at build time), update images into embassy-boot's DFU partition in flash
//! bank 2. See `embedded_target::board` for the build-time settings.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::{Runner, StackResources};
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::flash::Flash;
use embassy_stm32::peripherals::{ETH, ETH_SMA};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::{bind_interrupts, peripherals};
use embedded_target::board::{self, BoardStorage};
use static_cell::StaticCell;
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<peripherals::RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

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
    board::run(stack, storage, seed).await
}

fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    let mut config = embassy_stm32::Config::default();
    // 400 MHz from the 64 MHz HSI; HSI48 clocks the RNG.
    config.rcc.hsi = Some(HSIPrescaler::DIV1);
    config.rcc.csi = true;
    config.rcc.hsi48 = Some(Default::default());
    config.rcc.pll1 = Some(Pll {
        source: PllSource::HSI,
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL50,
        fracn: None,
        divp: Some(PllDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.sys = Sysclk::PLL1_P;
    config.rcc.ahb_pre = AHBPrescaler::DIV2;
    config.rcc.apb1_pre = APBPrescaler::DIV2;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.apb3_pre = APBPrescaler::DIV2;
    config.rcc.apb4_pre = APBPrescaler::DIV2;
    config.rcc.voltage_scale = VoltageScale::Scale1;
    config
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_stm32::init(clocks());
    defmt::info!("uftp-rs firmware, NUCLEO-H743ZI");

    let mut rng = Rng::new(p.RNG, Irqs);
    let mut seed = [0u8; 40];
    rng.fill_bytes(&mut seed);
    let (receiver_seed, stack_seed) = seed.split_at(32);
    let receiver_seed: [u8; 32] = receiver_seed.try_into().unwrap_or([0; 32]);
    let stack_seed = u64::from_le_bytes(stack_seed.try_into().unwrap_or([0; 8]));

    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::<4, 4>::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        board::mac_address(),
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        board::net_config(),
        RESOURCES.init(StackResources::new()),
        stack_seed,
    );
    let storage = board::storage(Flash::new_blocking(p.FLASH));
    spawner.spawn(defmt::unwrap!(net_task(runner)));
    spawner.spawn(defmt::unwrap!(receive_task(stack, storage, receiver_seed)));
}
