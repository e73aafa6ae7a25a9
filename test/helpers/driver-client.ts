export { type DriverClient, driverClient } from "../../src/driver/driver-client.js";
