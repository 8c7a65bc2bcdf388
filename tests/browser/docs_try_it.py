"""Drives the gateway's /docs page in headless Chromium, as a person would: waits for the
page's script to render the operations from /openapi.json, opens one, fills in its "try it"
form, presses Send, and waits for the answer to appear on the page. Prints one JSON object
(the operations listed, the status line and the answer text as the page shows them) for
tests/docs_page.rs to check.

Usage: docs_try_it.py DOCS_URL OPERATION_ID BODY_JSON
"""
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 20


def main() -> None:
    url, operation, body = sys.argv[1], sys.argv[2], sys.argv[3]
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, WAIT_S)
        op = wait.until(ready.presence_of_element_located((By.ID, "op-" + operation)))
        listed = [e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "details.op")]
        driver.execute_script("arguments[0].open = true;", op)
        form = op.find_element(By.CSS_SELECTOR, "form.try")
        textarea = form.find_element(By.CSS_SELECTOR, "textarea[name=body]")
        textarea.clear()
        textarea.send_keys(body)
        form.find_element(By.CSS_SELECTOR, "button.try-send").click()
        status = form.find_element(By.CSS_SELECTOR, ".try-status")
        wait.until(lambda _: status.text not in ("", "…"))
        result = form.find_element(By.CSS_SELECTOR, "pre.try-result")
        print(json.dumps({"operations": listed, "status": status.text, "result": result.text}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
