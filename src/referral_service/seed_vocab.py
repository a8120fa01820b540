"""Vocabulary for generated offers: institutions and their products, requirement sentences, search terms."""

from __future__ import annotations

# (institution, offer_type, product name)
PRODUCTS: list[tuple[str, str, str]] = [
    (inst, kind, name)
    for inst, kinds in {
        "Chase": {"bank": ["Total Checking", "Savings", "Private Client Checking", "Business Complete"],
                  "credit_card": ["Sapphire Preferred", "Sapphire Reserve", "Freedom Unlimited", "Ink Business Cash"]},
        "Bank of America": {"bank": ["Advantage Plus Banking", "Advantage Relationship"],
                            "credit_card": ["Customized Cash Rewards", "Travel Rewards", "Premium Rewards"]},
        "Wells Fargo": {"bank": ["Everyday Checking", "Prime Checking"],
                        "credit_card": ["Active Cash", "Autograph", "Reflect"]},
        "Citi": {"bank": ["Regular Checking", "Priority Checking"],
                 "credit_card": ["Premier", "Strata Premier", "Double Cash", "Custom Cash"]},
        "Capital One": {"bank": ["360 Checking", "360 Performance Savings"],
                        "credit_card": ["Venture", "Venture X", "Savor", "Quicksilver"]},
        "American Express": {"bank": ["High Yield Savings", "Rewards Checking"],
                             "credit_card": ["Gold Card", "Platinum Card", "Blue Cash Preferred", "Delta SkyMiles Gold"]},
        "Discover": {"bank": ["Cashback Debit", "Online Savings"], "credit_card": ["it Cash Back", "it Miles"]},
        "U.S. Bank": {"bank": ["Smartly Checking", "Standard Savings"],
                      "credit_card": ["Altitude Go", "Cash Plus", "Altitude Connect"]},
        "PNC": {"bank": ["Virtual Wallet", "Virtual Wallet with Performance Spend"],
                "credit_card": ["Cash Rewards", "Spend Wise"]},
        "TD Bank": {"bank": ["Complete Checking", "Beyond Checking"], "credit_card": ["Double Up", "Clear"]},
        "Truist": {"bank": ["One Checking", "Dimension Checking"], "credit_card": ["Enjoy Cash"]},
        "Huntington": {"bank": ["Perks Checking", "Platinum Perks Checking"], "credit_card": ["Voice Rewards"]},
        "Citizens": {"bank": ["One Deposit Checking", "Quest Checking"], "credit_card": ["Cash Back Plus"]},
        "KeyBank": {"bank": ["Smart Checking", "Select Checking"]},
        "Regions": {"bank": ["LifeGreen Checking"], "credit_card": ["Prestige"]},
        "Fifth Third": {"bank": ["Momentum Checking", "Preferred Checking"]},
        "SoFi": {"bank": ["Checking and Savings"], "credit_card": ["Everyday Cash Rewards"],
                 "brokerage": ["Active Investing", "Automated Investing"]},
        "Ally": {"bank": ["Spending Account", "Online Savings"], "brokerage": ["Self-Directed Trading"]},
        "Marcus": {"bank": ["Online Savings"]},
        "Chime": {"bank": ["Checking Account"]},
        "Varo": {"bank": ["Bank Account"]},
        "Current": {"bank": ["Premium Account"]},
        "Axos": {"bank": ["Rewards Checking", "Essential Checking"]},
        "Barclays": {"bank": ["Online Savings"], "credit_card": ["AAdvantage Aviator Red", "JetBlue Plus"]},
        "Bilt": {"credit_card": ["Mastercard"]},
        "Robinhood": {"brokerage": ["Gold", "Retirement IRA", "Free Stock"]},
        "Webull": {"brokerage": ["Individual Brokerage", "IRA"]},
        "Moomoo": {"brokerage": ["Brokerage Account"]},
        "Fidelity": {"brokerage": ["Brokerage Account", "Roth IRA"], "credit_card": ["Rewards Visa Signature"]},
        "Charles Schwab": {"brokerage": ["Brokerage Account"], "bank": ["Investor Checking"]},
        "E*TRADE": {"brokerage": ["Brokerage Account", "Core Portfolios"]},
        "Public": {"brokerage": ["Investing Account", "Treasury Account"]},
        "Firstrade": {"brokerage": ["Brokerage Account"]},
        "tastytrade": {"brokerage": ["Options Account"]},
        "Interactive Brokers": {"brokerage": ["IBKR Lite", "IBKR Pro"]},
        "Merrill Edge": {"brokerage": ["Self-Directed Investing"]},
        "M1 Finance": {"brokerage": ["Invest Account"]},
        "Navy Federal": {"bank": ["Free Active Duty Checking"], "credit_card": ["cashRewards"]},
        "PenFed": {"bank": ["Access America Checking"], "credit_card": ["Pathfinder Rewards"]},
        "Alliant": {"bank": ["High-Rate Checking"]},
    }.items()
    for kind, names in kinds.items()
    for name in names
]

# Requirement sentences per offer type: %1$s is the bonus threshold amount, %2$s a number of days.
REQUIREMENTS: dict[str, list[str]] = {
    "bank": [
        "Open a new checking account and receive direct deposits totaling $%1$s or more within %2$s days.",
        "Deposit $%1$s in new money and keep it in the account for %2$s days.",
        "Make at least 10 debit card purchases within %2$s days of account opening.",
        "Set up a qualifying direct deposit of $%1$s within %2$s days; the bonus posts within 8 weeks.",
        "Not available to customers who held an account in the last 12 months.",
        "Maintain a minimum daily balance of $%1$s for the first %2$s days.",
    ],
    "credit_card": [
        "Spend $%1$s on purchases within %2$s days from account opening.",
        "Earn the bonus after spending $%1$s in the first %2$s days; annual fee applies.",
        "Not available if you received a new cardmember bonus for this card in the last 48 months.",
        "Add an authorized user and make a purchase within %2$s days.",
        "Balance transfers and cash advances do not count toward the spending requirement of $%1$s.",
        "Apply through the referral link and get approved; spend $%1$s within %2$s days.",
    ],
    "brokerage": [
        "Open a brokerage account and link a bank account within %2$s days.",
        "Deposit $%1$s in cash or transfer assets and keep them for %2$s days.",
        "Transfer a portfolio of $%1$s or more from another broker within %2$s days.",
        "Free stock is chosen at random; its value ranges from $5 to $200.",
        "Make at least one trade within %2$s days of funding the account.",
        "IRA rollovers of $%1$s or more qualify for the higher tier.",
    ],
}

TYPES = ["bank", "credit_card", "brokerage"]

# What people type into a search box: products, institutions, requirement words, web-search syntax.
SEARCH_TERMS = [
    "sapphire preferred", "venture x", "chase checking", "chase direct deposit", "\"free stock\"", "brokerage transfer",
    "savings bonus", "venture miles", "gold card", "amex platinum", "wells fargo", "citi premier", "capital one savor",
    "sofi", "robinhood gold", "webull ira", "authorized user", "debit card purchases", "ira rollover",
    "cash back -annual", "business checking", "schwab", "fidelity roth", "portfolio transfer", "jetblue",
    "high yield savings", "navy federal", "premium rewards", "virtual wallet", "active cash",
]
