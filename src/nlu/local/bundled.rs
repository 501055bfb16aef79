//! The vehicle assistant bot compiled into the binary, so `serve` works from
//! any directory without `LOCAL_BOT`.

use super::files::FileMap;

macro_rules! bot_file {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!("../../../bots/vehicle-assistant/", $path)),
        )
    };
}

pub fn files() -> FileMap {
    FileMap::from_entries([
        bot_file!("Manifest.json"),
        bot_file!("VehicleAssistant/Bot.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/BotLocale.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/Intents/CheckStatus/Intent.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/Intents/FallbackIntent/Intent.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/Intents/Greeting/Intent.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/Intents/Help/Intent.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/Intents/LockDoors/Intent.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/Intents/SetGeofence/Intent.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/Intents/SetGeofence/Slots/place/Slot.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/Intents/SetGeofence/Slots/radius/Slot.json"),
        bot_file!("VehicleAssistant/BotLocales/en_US/SlotTypes/PlaceType/SlotType.json"),
    ])
}
