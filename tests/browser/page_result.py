"""Loads a page in headless Chromium through Selenium and waits, in real time, until the
page's script has written its results into <pre id="result"> (anything but "pending");
prints that text. For pages whose work is not a fetch (a WebSocket chat,
tests/chromium_websocket.rs), which `chromium --dump-dom` would dump before they finish.

Usage: page_result.py URL
"""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 20


def main() -> None:
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(sys.argv[1])
        result = driver.find_element(By.ID, "result")
        WebDriverWait(driver, WAIT_S).until(lambda _: result.text != "pending")
        print(result.text)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
