"""The firmware's access control: the AP password set in its config is the one it uses."""

import pytest

support_firmware = pytest.importorskip("support_firmware")


async def test_ap_password_from_config_is_used_and_never_printed():
    async with support_firmware.firmware_server(ap_password="a-long-secret-phrase") as firmware:
        await firmware.wait_for_log("access point")
        assert "WARNING: the WiFi password" not in firmware.log()
        assert "a-long-secret-phrase" not in firmware.log()


async def test_a_password_wpa2_would_refuse_stops_the_start():
    from dronecam.tools.firmware import FirmwareError

    with pytest.raises(FirmwareError) as refused:
        async with support_firmware.firmware_server(ap_password="short"):
            pass
    assert "at least 8 characters" in str(refused.value)
