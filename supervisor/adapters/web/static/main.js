console.debug("placeholder");
