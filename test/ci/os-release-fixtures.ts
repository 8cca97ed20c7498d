// os-release(5) of the distributions CI runs on, as each ships it.

export const DEBIAN_12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`

/** GitHub's ubuntu-24.04 runners. */
export const UBUNTU_24_04 = `PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=noble
LOGO=ubuntu-logo
`

/** A derivative that says it is like Ubuntu: packages as Ubuntu has them. */
export const MINT_22 = `NAME="Linux Mint"
VERSION="22 (Wilma)"
ID=linuxmint
ID_LIKE="ubuntu debian"
PRETTY_NAME="Linux Mint 22"
VERSION_ID="22"
`

export const FEDORA_41 = `NAME="Fedora Linux"
VERSION="41 (Container Image)"
ID=fedora
VERSION_ID=41
PRETTY_NAME="Fedora Linux 41 (Container Image)"
`

// Executables as each machine has them.
/** Debian 12 with `chromium` installed. */
export const DEBIAN_WITH_CHROMIUM = ['/usr/bin/chromium']
/**
 * A GitHub ubuntu-24.04 runner: Google Chrome from Google's .deb, and Ubuntu's chromium stubs
 * that start a snap.
 */
export const UBUNTU_RUNNER = ['/usr/bin/google-chrome', '/usr/bin/google-chrome-stable', '/opt/google/chrome/chrome', '/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium']
/** Ubuntu 24.04 with only the chromium snap stubs. */
export const UBUNTU_SNAP_ONLY = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium']
