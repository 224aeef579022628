"""Stand-in for MicroPython's `network` module on the unix port: an access point without radio."""

STA_IF = 0
AP_IF = 1
AUTH_OPEN = 0
AUTH_WEP = 1
AUTH_WPA_PSK = 2
AUTH_WPA2_PSK = 3
AUTH_WPA_WPA2_PSK = 4

_KEYS = ("essid", "ssid", "password", "key", "authmode", "channel", "hidden", "max_clients",
         "txpower", "mac")


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface
        self._active = False
        self._config = {"essid": "", "authmode": AUTH_OPEN, "channel": 1, "max_clients": 10}
        self._ifconfig = ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")

    def active(self, value=None):
        if value is None:
            return self._active
        self._active = bool(value)
        return None

    def config(self, *names, **settings):
        if names:
            return self._config[names[0]]
        for key in settings:
            if key not in _KEYS:
                raise ValueError("unknown config param")
        if settings.get("authmode", AUTH_OPEN) != AUTH_OPEN and len(settings.get("password", "")) < 8:
            raise OSError(-1)  # ESP_ERR_WIFI_PASSWORD in esp_wifi_set_config
        self._config.update(settings)
        print("[network stand-in] access point %r (no radio on this host; serving on loopback)"
              % self._config.get("essid"))
        return None

    def ifconfig(self, settings=None):
        if settings is None:
            return self._ifconfig
        self._ifconfig = tuple(settings)
        return None

    def isconnected(self):
        return self._active

    def status(self, *args):
        return []
