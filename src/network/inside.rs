//! The container's side of its cable, configured by init itself just before it execs:
//! init is already in the netns and waits there anyway, so `run` needs no thread that
//! enters the netns, no netlink socket and no runtime for it. Four ioctls on one socket,
//! the way `ifconfig` and `route` do it; the kernel makes the same address and route as
//! the `ip` commands `--explain` prints.

use std::io;
use std::net::Ipv4Addr;

use crate::explain;

/// What init sets up on `eth0` (the veth's peer, made by `run` in init's netns).
#[derive(Debug, Clone)]
pub struct Eth0 {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// The netns's name, for `--explain`.
    pub netns: String,
}

/// `lo` up; then, given `eth0`, its address, up, and the default route via the gateway.
pub fn configure(eth0: Option<&Eth0>) -> io::Result<()> {
    let sock = Socket::new()?;
    match eth0 {
        Some(e) => {
            explain::step(&format!("ip netns exec {} ip link set lo up", e.netns), "the container's own loopback")
        }
        None => explain::approx("nsenter --net=/proc/PID/ns/net ip link set lo up", "the container's own loopback"),
    }
    sock.up("lo")?;
    let Some(e) = eth0 else { return Ok(()) };
    let ns = &e.netns;
    let mask = if e.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(e.prefix)) };
    let broadcast = Ipv4Addr::from(u32::from(e.ip) | !mask);
    explain::step(
        &format!("ip netns exec {ns} ip addr add {}/{} brd {broadcast} dev eth0", e.ip, e.prefix),
        "the container's address on the bridge's subnet",
    );
    sock.set_addr("eth0", libc::SIOCSIFADDR, e.ip)?;
    // The netmask after the address: the kernel then derives the broadcast from both.
    sock.set_addr("eth0", libc::SIOCSIFNETMASK, Ipv4Addr::from(mask))?;
    explain::step(&format!("ip netns exec {ns} ip link set eth0 up"), "switch the container's end on");
    sock.up("eth0")?;
    explain::step(
        &format!("ip netns exec {ns} ip route add default via {}", e.gateway),
        "everything not local goes to the bridge",
    );
    sock.default_route(e.gateway)
}

/// A datagram socket for the ioctls; closed when dropped.
struct Socket(i32);

impl Socket {
    fn new() -> io::Result<Socket> {
        // SAFETY: a plain socket call.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket(fd))
    }

    fn ifreq(name: &str) -> libc::ifreq {
        // SAFETY: an all-zero ifreq is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (i, b) in name.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        req
    }

    fn ioctl<T>(&self, request: libc::c_ulong, arg: &mut T, what: &str) -> io::Result<()> {
        // SAFETY: `arg` is the structure this request reads or fills.
        if unsafe { libc::ioctl(self.0, request as _, arg as *mut T) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
        }
        Ok(())
    }

    fn up(&self, name: &str) -> io::Result<()> {
        let mut req = Self::ifreq(name);
        self.ioctl(libc::SIOCGIFFLAGS, &mut req, &format!("reading {name}'s flags"))?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        self.ioctl(libc::SIOCSIFFLAGS, &mut req, &format!("bringing {name} up"))
    }

    fn set_addr(&self, name: &str, request: libc::c_ulong, addr: Ipv4Addr) -> io::Result<()> {
        let mut req = Self::ifreq(name);
        req.ifr_ifru.ifru_addr = sockaddr(addr);
        self.ioctl(request, &mut req, &format!("setting {name}'s address {addr}"))
    }

    fn default_route(&self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut rt = RtEntry {
            rt_pad1: 0,
            rt_dst: sockaddr(Ipv4Addr::UNSPECIFIED),
            rt_gateway: sockaddr(gateway),
            rt_genmask: sockaddr(Ipv4Addr::UNSPECIFIED),
            rt_flags: RTF_UP | RTF_GATEWAY,
            rt_pad2: 0,
            rt_pad3: 0,
            rt_pad4: std::ptr::null_mut(),
            rt_metric: 0,
            rt_dev: std::ptr::null_mut(),
            rt_mtu: 0,
            rt_window: 0,
            rt_irtt: 0,
        };
        self.ioctl(libc::SIOCADDRT, &mut rt, &format!("adding the default route via {gateway}"))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(addr).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; the kernel reads it as the
    // family says.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

const RTF_UP: libc::c_ushort = 0x0001;
const RTF_GATEWAY: libc::c_ushort = 0x0002;

/// The kernel's `struct rtentry` (SIOCADDRT), which glibc's libc crate does not define.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

#[cfg(test)]
mod tests {
    #[test]
    fn rtentry_has_the_kernels_size() {
        // x86_64: 8 + 3 * 16 + 2 + 2 + 4 (pad) + 8 + 8 + 2 + 6 (pad) + 8 + 8 + 8 + 2 + 6 (pad)
        assert_eq!(std::mem::size_of::<super::RtEntry>(), 120);
    }
}
